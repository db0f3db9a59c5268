// The lease's countdown. The server says how many seconds are left (its clock, not this
// machine's, which may be wrong); the page counts down from there with performance.now(),
// warns once before the end and says when the end has come.

import { clock } from "./timer.js";

export const WARN_SECONDS = 120;

export class LeaseClock {
  constructor(secondsLeft, { onTick, onWarn, onEnd, warnAt = WARN_SECONDS }) {
    this.onTick = onTick;
    this.onWarn = onWarn;
    this.onEnd = onEnd;
    this.warnAt = warnAt;
    this.interval = null;
    this.restart(secondsLeft);
  }

  restart(secondsLeft) {
    this.stop();
    this.deadline = performance.now() + secondsLeft * 1000;
    this.warned = secondsLeft > this.warnAt ? false : null; // null: warn on the first tick
    this.ended = false;
    this.interval = setInterval(() => this.tick(), 1000);
    this.tick();
  }

  get secondsLeft() {
    return Math.max(0, Math.ceil((this.deadline - performance.now()) / 1000));
  }

  tick() {
    const left = this.secondsLeft;
    this.onTick(left, clock(left));
    if (left <= this.warnAt && this.warned !== true && left > 0) {
      this.warned = true;
      this.onWarn(left);
    }
    if (left <= 0 && !this.ended) {
      this.ended = true;
      this.stop();
      this.onEnd();
    }
  }

  stop() {
    if (this.interval !== null) clearInterval(this.interval);
    this.interval = null;
  }
}
