// The way out of a railcar that cannot be judged: a reason from the fixed list (the page renders
// labeling.pool.ReleaseReason) and a note, sent to the same API as any client's release.

import { api } from "./api.js";

const $ = (id) => document.getElementById(id);

export class ReleaseDialog {
  constructor({ url, onReleased, onError }) {
    this.url = url;
    this.onReleased = onReleased;
    this.onError = onError; // a lost lease: the workspace shows why
    this.dialog = $("ws-release");
    this.form = $("ws-release-form");
    this.form.addEventListener("submit", (e) => this.send(e));
    $("ws-release-cancel").addEventListener("click", () => this.dialog.close());
  }

  get open() {
    return this.dialog.open;
  }

  show(reason = null) {
    this.form.reset();
    this.showError("");
    const chosen = reason && this.form.querySelector(`input[name=reason][value=${reason}]`);
    if (chosen) chosen.checked = true;
    this.dialog.showModal();
    (chosen ? $("ws-release-note") : this.form.querySelector("input[name=reason]")).focus();
  }

  close() {
    if (this.dialog.open) this.dialog.close();
  }

  async send(event) {
    event.preventDefault();
    if (!this.form.reportValidity()) return;
    const body = { reason: this.form.elements.reason.value, note: this.form.elements.note.value.trim() };
    $("ws-release-send").disabled = true;
    try {
      await api(this.url, { method: "POST", body });
      this.close();
      this.onReleased();
    } catch (error) {
      if (error.leaseGone) this.onError(error);
      else this.showError(error.message);
    } finally {
      $("ws-release-send").disabled = false;
    }
  }

  showError(message) {
    $("ws-release-error").textContent = message;
    $("ws-release-error").hidden = !message;
  }
}
