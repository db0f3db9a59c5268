// The mask tool's prompts on the current frame and the proposal they give. Each change asks the
// server for a new proposal after a short pause (typing-like bursts of clicks send one request),
// and a newer request cancels the one in flight so a stale mask is never shown.

import { api } from "./api.js";
import { maskCanvas } from "./rle.js";

const DEBOUNCE_MS = 150;
const PROPOSAL_FILL = [56, 189, 248, 110];
const PROPOSAL_EDGE = [186, 230, 253, 255];

const empty = () => ({ points: [], labels: [], box: null });

export class MaskTool {
  constructor({ url, onChange, onError }) {
    this.url = url; // frameId -> proposal URL
    this.onChange = onChange;
    this.onError = onError;
    this.reset(null);
  }

  reset(frameId) {
    if (this.controller) this.controller.abort();
    clearTimeout(this.timer);
    this.timer = null;
    this.frameId = frameId;
    this.prompts = empty();
    this.history = [];
    this.proposal = null;
    this.inflight = null;
    this.controller = null;
  }

  get busy() {
    return Boolean(this.inflight) || this.timer !== null;
  }

  get ready() {
    return this.prompts.box !== null || this.prompts.labels.includes(1);
  }

  get empty() {
    return this.prompts.points.length === 0 && this.prompts.box === null;
  }

  edit(change) {
    this.history.push(structuredClone(this.prompts));
    change(this.prompts);
    this.changed();
  }

  addPoint(point, label) {
    this.edit((p) => {
      p.points.push(point);
      p.labels.push(label);
    });
  }

  setBox(box) {
    this.edit((p) => {
      p.box = box;
    });
  }

  undo() {
    if (!this.history.length) return false;
    this.prompts = this.history.pop();
    this.changed();
    return true;
  }

  clear() {
    this.reset(this.frameId);
    this.onChange();
  }

  changed() {
    if (this.controller) this.controller.abort();
    clearTimeout(this.timer);
    this.timer = null;
    this.inflight = null;
    if (!this.ready) {
      this.proposal = null;
    } else {
      const prompts = structuredClone(this.prompts);
      this.timer = setTimeout(() => {
        this.timer = null;
        this.inflight = this.request(prompts);
      }, DEBOUNCE_MS);
    }
    this.onChange();
  }

  async request(prompts) {
    const controller = new AbortController();
    this.controller = controller;
    this.onChange();
    try {
      const answer = await api(this.url(this.frameId), {
        method: "POST",
        body: { prompts },
        signal: controller.signal,
      });
      if (controller.signal.aborted) return;
      this.proposal = {
        ...answer,
        prompts,
        canvas: maskCanvas(answer.rle, PROPOSAL_FILL, PROPOSAL_EDGE),
      };
    } catch (error) {
      if (error.name === "AbortError") return;
      this.proposal = null;
      this.onError(error);
    } finally {
      if (this.controller === controller) {
        this.controller = null;
        this.inflight = null;
        this.onChange();
      }
    }
  }

  // The proposal for the current prompts, once it has arrived (waits for one being fetched).
  async settled() {
    if (this.timer !== null) {
      clearTimeout(this.timer);
      this.timer = null;
      this.inflight = this.request(structuredClone(this.prompts));
    }
    if (this.inflight) await this.inflight;
    return this.proposal;
  }
}
