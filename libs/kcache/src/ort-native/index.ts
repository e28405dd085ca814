export * from './native-ort';
export * from './native-ort-error';
