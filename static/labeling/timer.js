// Active time on one assignment: counts only while the tab is visible, and survives a reload of
// the page (sessionStorage, per assignment) so that a refresh does not reset the clock.

export class ActiveTimer {
  constructor(key, onTick) {
    this.key = `scrapannot:active-seconds:${key}`;
    this.onTick = onTick;
    this.banked = Number(sessionStorage.getItem(this.key)) || 0;
    this.since = null;
    document.addEventListener("visibilitychange", () => this.sync());
    window.addEventListener("pagehide", () => this.save());
    this.sync();
    this.interval = setInterval(() => {
      this.save();
      this.onTick(this.seconds);
    }, 1000);
    this.onTick(this.seconds);
  }

  sync() {
    if (document.visibilityState === "visible") {
      if (this.since === null) this.since = performance.now();
    } else if (this.since !== null) {
      this.banked += (performance.now() - this.since) / 1000;
      this.since = null;
    }
    this.save();
  }

  get seconds() {
    const running = this.since === null ? 0 : (performance.now() - this.since) / 1000;
    return Math.round(this.banked + running);
  }

  save() {
    if (this.stopped) return;
    sessionStorage.setItem(this.key, String(this.banked + (this.since === null ? 0 : (performance.now() - this.since) / 1000)));
  }

  stop() {
    this.stopped = true;
    clearInterval(this.interval);
    sessionStorage.removeItem(this.key);
  }
}

export function clock(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
