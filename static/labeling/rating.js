// The rating form: contamination % (0-100, one decimal) and grade, sent once.
// A double click or a repeated Ctrl+Enter joins the request in flight, and a request lost to the
// network is retried: the server records one rating per assignment whatever it receives, so a
// retry can only return the rating already recorded.

import { api } from "./api.js";

const $ = (id) => document.getElementById(id);

export class RatingForm {
  constructor({ url, seconds, onDone, onError }) {
    this.url = url;
    this.seconds = seconds; // () -> active seconds so far
    this.onDone = onDone;
    this.onError = onError;
    this.form = $("ws-rating");
    this.pending = null;
    this.closed = false;
    this.form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    const pct = this.form.elements.contamination_pct;
    // Enter in the % field confirms the number; it must not send the whole rating.
    pct.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && !(e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        pct.blur();
      }
    });
    // A wheel turned over the focused field would change the number unseen.
    pct.addEventListener("wheel", (e) => { if (document.activeElement === pct) e.preventDefault(); }, { passive: false });
  }

  close() {
    this.closed = true;
    $("ws-submit").disabled = true;
  }

  chooseGrade(n) {
    const radio = this.form.querySelectorAll("input[name=grade]")[n - 1];
    if (radio) radio.checked = true;
    return radio ? radio.value : null;
  }

  focusContamination() {
    const pct = this.form.elements.contamination_pct;
    pct.focus();
    pct.select();
  }

  submit() {
    if (this.closed) return null;
    if (this.pending) return this.pending;
    this.showError("");
    if (!this.form.reportValidity()) return null;
    const body = {
      contamination_pct: Number(this.form.elements.contamination_pct.value).toFixed(1),
      grade: this.form.elements.grade.value,
      seconds_spent: this.seconds(),
    };
    $("ws-submit").disabled = true;
    this.pending = (async () => {
      try {
        const rating = await retry(() => api(this.url, { method: "POST", body }));
        this.close();
        this.onDone(rating);
      } catch (error) {
        this.onError(error);
        if (!error.leaseGone) this.showError(error.message);
        $("ws-submit").disabled = this.closed;
      } finally {
        this.pending = null;
      }
    })();
    return this.pending;
  }

  showError(message) {
    $("ws-form-error").textContent = message;
    $("ws-form-error").hidden = !message;
  }
}

async function retry(request, attempts = 3) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await request();
    } catch (error) {
      const transient = error.status === 0 || error.status >= 502;
      if (!transient || attempt >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, 800 * attempt));
    }
  }
}
