/**
 * Typed domain errors. Services throw these; the fault filter turns them into each API's own fault body.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** Neutron-style error type ("NetworkNotFound"); other APIs ignore it. */
    readonly type?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export class BadRequestError extends ApiError {
  constructor(message: string, type = 'HTTPBadRequest') {
    super(400, message, type);
  }
}
export class UnauthorizedError extends ApiError {
  constructor(
    message = 'The request you have made requires authentication.',
    headers: Record<string, string> = {},
  ) {
    super(401, message, 'HTTPUnauthorized', headers);
  }
}
export class ForbiddenError extends ApiError {
  constructor(message = 'You are not authorized to perform the requested action.', type = 'HTTPForbidden') {
    super(403, message, type);
  }
}
export class NotFoundError extends ApiError {
  constructor(message: string, type = 'HTTPNotFound') {
    super(404, message, type);
  }
}
export class ConflictError extends ApiError {
  constructor(message: string, type = 'HTTPConflict') {
    super(409, message, type);
  }
}
export class PayloadTooLargeError extends ApiError {
  constructor(message: string) {
    super(413, message, 'HTTPRequestEntityTooLarge');
  }
}
export class NotAcceptableError extends ApiError {
  constructor(message: string) {
    super(406, message, 'HTTPNotAcceptable');
  }
}
export class ServiceUnavailableError extends ApiError {
  constructor(message: string) {
    super(503, message, 'HTTPServiceUnavailable');
  }
}

export const HTTP_TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  416: 'Requested Range Not Satisfiable',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

export interface Fault {
  status: number;
  message: string;
  type?: string;
}

/** How one OpenStack service spells a fault body. */
export type FaultStyle = (fault: Fault) => unknown;

/** Keystone: `{"error": {"code": 401, "title": "Unauthorized", "message": "..."}}`. */
export const keystoneFault: FaultStyle = ({ status, message }) => ({
  error: { code: status, title: HTTP_TITLES[status] ?? 'Error', message },
});

const NOVA_FAULT_NAMES: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  406: 'notAcceptable',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  429: 'overLimit',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

/** Nova (and Heat's API, which follows the same webob fault shape): `{"itemNotFound": {"code", "message"}}`. */
export const novaFault: FaultStyle = ({ status, message }) => ({
  [NOVA_FAULT_NAMES[status] ?? 'computeFault']: { code: status, message },
});

/** Neutron: `{"NeutronError": {"type": "NetworkNotFound", "message": "...", "detail": ""}}`. */
export const neutronFault: FaultStyle = ({ status, message, type }) => ({
  NeutronError: { type: type ?? HTTP_TITLES[status]?.replace(/ /g, '') ?? 'Error', message, detail: '' },
});

/** Glance (webob's JSON error body): `{"code": "404 Not Found", "title": "Not Found", "message": "..."}`. */
export const glanceFault: FaultStyle = ({ status, message }) => {
  const title = HTTP_TITLES[status] ?? 'Error';
  return { code: `${status} ${title}`, title, message };
};
