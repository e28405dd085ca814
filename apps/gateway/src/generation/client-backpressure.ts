/**
 * Bounds what waits in the gateway for one slow client. After each write, `wrote(isAccepted)` takes the
 * transport's write() result; once a write is refused (its buffer is above the high-water mark) the
 * client is congested until `drained()`. While congested, more than maxBufferedEvents further writes, or
 * timeoutMs without a drain, call onTooSlow once: the caller cuts the stream.
 */
export class ClientBackpressure {
  private numBuffered = 0;
  private timer: NodeJS.Timeout | undefined;
  private isTripped = false;

  constructor(
    private readonly limits: { readonly maxBufferedEvents: number; readonly timeoutMs: number },
    private readonly onTooSlow: () => void,
  ) {}

  get isCongested(): boolean {
    return this.timer !== undefined;
  }

  wrote(isAccepted: boolean): void {
    if (this.isTripped) return;
    if (!this.isCongested) {
      if (isAccepted) return;
      this.timer = setTimeout(() => this.trip(), this.limits.timeoutMs);
    }
    this.numBuffered++;
    if (this.numBuffered > this.limits.maxBufferedEvents) this.trip();
  }

  drained(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.numBuffered = 0;
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.isTripped = true;
  }

  private trip(): void {
    if (this.isTripped) return;
    this.dispose();
    this.onTooSlow();
  }
}
