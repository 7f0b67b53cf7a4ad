/** Injection token of the image service's public root URL (`http://host:9292/image`). */
export const IMAGE_BASE_URL = Symbol('IMAGE_BASE_URL');
