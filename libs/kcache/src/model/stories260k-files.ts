/** The pinned default model (../shared/models/stories260K/README.md). */
export const STORIES260K_NAME = 'stories260K';

export const STORIES260K_BASE_URL =
  'https://huggingface.co/karpathy/tinyllamas/resolve/0bd21da7698eaf29a0d7de3992de8a46ef624add/stories260K';

export interface PinnedFile {
  readonly fileName: string;
  readonly bytes: number;
  readonly sha256: string;
}

export const STORIES260K_FILES: readonly PinnedFile[] = [
  {
    fileName: 'stories260K.bin',
    bytes: 1_056_540,
    sha256: 'b0a507e7ad0f626624f17112325e66691f9076d622e1d3274d103d00299f2696',
  },
  {
    fileName: 'tok512.bin',
    bytes: 6_227,
    sha256: '037cb335abb25d1fa9e8ecae30ed2a3a8ace9302862ebcdc05d51a6bbb10c312',
  },
];
