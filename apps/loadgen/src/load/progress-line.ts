/**
 * A status line on a stream: rewritten in place (\r, erase to end of line) on a terminal, one line per
 * update otherwise (logs, pipes).
 */
export class ProgressLine {
  private isShown = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  update(text: string): void {
    if (this.out.isTTY) {
      this.out.write(`\r${text}\x1b[K`);
      this.isShown = true;
    } else {
      this.out.write(text + '\n');
    }
  }

  /** Removes the line from a terminal so that what follows starts on a clean line. */
  clear(): void {
    if (this.isShown) this.out.write('\r\x1b[K');
    this.isShown = false;
  }
}
