/** Nest injection tokens for values that are not classes. */
export const REDIS = Symbol('Redis');
export const GENERATION_QUEUE = Symbol('GenerationQueue');
export const SERVED_MODEL = Symbol('ServedModel');
export const LOGGER = Symbol('Logger');
