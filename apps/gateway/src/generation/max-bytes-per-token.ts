/**
 * No vocabulary we serve has tokens this long, so a prompt (or a conversation's content) of more than
 * maxSeqLen times this many bytes cannot fit the context; it is refused before tokenizing (which blocks
 * the event loop ~150 ms per MB).
 */
export const MAX_BYTES_PER_TOKEN = 256;
