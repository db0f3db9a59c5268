// The decision form: a plain HTML form that the server validates and records. The page adds a
// confirm step, because a decision is final: submitting (Ctrl-Enter, Enter in the % field, the
// button) first shows what will be recorded; Enter there records it, Esc goes back. The form is
// posted once: a second Enter while the page unloads cannot post it again.

const $ = (id) => document.getElementById(id);
const OTHER = "other";

export class Decision {
  constructor(form) {
    this.form = form;
    this.dialog = $("adj-confirm");
    this.sent = false;
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.review();
    });
    $("adj-confirm-yes").addEventListener("click", () => this.record());
    $("adj-confirm-no").addEventListener("click", () => this.dialog.close());
    const pct = form.elements.contamination_pct;
    // A wheel turned over the focused field would change the number unseen.
    pct.addEventListener("wheel", (e) => { if (document.activeElement === pct) e.preventDefault(); }, { passive: false });
  }

  get open() {
    return this.dialog.open;
  }

  review() {
    if (this.sent) return;
    this.showError("");
    if (!this.form.reportValidity()) return;
    const data = new FormData(this.form);
    const note = String(data.get("note") || "").trim();
    if (data.get("rationale_code") === OTHER && !note) {
      this.showError("The rationale 'other' needs a note that says why.");
      this.focusNote();
      return;
    }
    const code = this.form.querySelector("input[name=rationale_code]:checked");
    const pct = Number(data.get("contamination_pct")).toFixed(1);
    $("adj-confirm-summary").textContent =
      `${pct} %, grade ${data.get("grade")}, rationale: ${code.dataset.label}` +
      (note ? `. Note: ${note}` : ".");
    this.dialog.showModal();
  }

  record() {
    if (this.sent) return;
    this.sent = true;
    $("adj-confirm-yes").disabled = true;
    this.form.submit();
  }

  choose(name, n) {
    const radio = this.form.querySelectorAll(`input[name=${name}]`)[n - 1];
    if (radio) radio.checked = true;
    return radio ? radio.value : null;
  }

  focusContamination() {
    const pct = this.form.elements.contamination_pct;
    pct.focus();
    pct.select();
  }

  focusNote() {
    this.form.elements.note.focus();
  }

  showError(message) {
    $("adj-form-error").textContent = message;
    $("adj-form-error").hidden = !message;
  }
}
