// Active time on one assignment: counts while a tab of it is visible, in one clock that every
// tab of the assignment shares (localStorage, per assignment), so a second tab, a reload or a
// railcar continued in a new tab neither restarts the count nor loses what the first tab
// counted. Two tabs visible at once count the same seconds once: each tick adds only the time
// since the later of the clock's last tick (by any tab) and this tab's own last tick.

const TICK_MS = 1000;

export class ActiveTimer {
  constructor(key, onTick) {
    this.key = `scrapannot:active-time:${key}`;
    this.onTick = onTick;
    this.mark = null; // when this tab last counted (or became visible); null while hidden
    document.addEventListener("visibilitychange", () => this.sync());
    window.addEventListener("pagehide", () => this.tick());
    window.addEventListener("storage", (e) => {
      if (e.key === this.key) this.onTick(this.seconds);
    });
    this.sync();
    this.interval = setInterval(() => {
      this.tick();
      this.onTick(this.seconds);
    }, TICK_MS);
    this.onTick(this.seconds);
  }

  read() {
    try {
      const clock = JSON.parse(localStorage.getItem(this.key));
      if (clock && Number.isFinite(clock.ms) && Number.isFinite(clock.last)) return clock;
    } catch {
      // an unreadable clock starts again from nothing
    }
    return { ms: 0, last: 0 };
  }

  tick() {
    if (this.stopped || this.mark === null) return;
    const now = Date.now();
    const clock = this.read();
    const from = Math.max(clock.last, this.mark);
    if (now > from) clock.ms += now - from;
    clock.last = Math.max(clock.last, now);
    this.mark = now;
    localStorage.setItem(this.key, JSON.stringify(clock));
  }

  sync() {
    if (document.visibilityState === "visible") {
      if (this.mark === null) this.mark = Date.now();
    } else {
      this.tick();
      this.mark = null;
    }
  }

  get seconds() {
    const clock = this.read();
    const running = this.mark === null ? 0 : Math.max(0, Date.now() - Math.max(clock.last, this.mark));
    return Math.round((clock.ms + running) / 1000);
  }

  stop() {
    this.tick();
    this.stopped = true;
    clearInterval(this.interval);
    localStorage.removeItem(this.key);
  }
}

export function clock(seconds) {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = String(seconds % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
