import { BadRequestException } from '@nestjs/common';
import { ConflictError, keystoneFault, neutronFault, NotFoundError, novaFault } from './faults';
import { toFault } from './fault.filter';

describe('faults', () => {
  it('maps domain errors, Nest exceptions and Fastify client errors to their status', () => {
    expect(toFault(new NotFoundError('Instance x could not be found.'))).toMatchObject({
      status: 404,
      message: 'Instance x could not be found.',
    });
    expect(toFault(new BadRequestException(['a is bad', 'b is bad']))).toMatchObject({
      status: 400,
      message: 'a is bad; b is bad',
    });
    expect(
      toFault(Object.assign(new Error('x'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' })),
    ).toMatchObject({
      status: 400,
      message: 'Malformed request body: the body is not valid JSON.',
    });
  });

  it('answers 503 for a lost backend connection and 500 without detail for anything else', () => {
    const lost = Object.assign(new Error('query failed'), {
      driverError: Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }),
    });
    expect(toFault(lost)).toMatchObject({ status: 503, headers: { 'retry-after': '5' } });
    // PostgreSQL's "sorry, too many clients already" (53300): every connection slot taken, for now.
    const full = Object.assign(new Error('query failed'), {
      driverError: Object.assign(new Error('sorry, too many clients already'), { code: '53300' }),
    });
    expect(toFault(full).status).toBe(503);
    // Every connection of the process's own pool busy past the wait pg-pool allows.
    expect(toFault(new Error('timeout exceeded when trying to connect')).status).toBe(503);
    const bug = toFault(new TypeError("Cannot read properties of undefined (reading 'id')"));
    expect(bug.status).toBe(500);
    expect(bug.message).not.toContain('undefined');
  });

  it('spells each service fault its own way', () => {
    const fault = { status: 404, message: 'gone' };
    expect(keystoneFault(fault)).toEqual({ error: { code: 404, title: 'Not Found', message: 'gone' } });
    expect(novaFault(fault)).toEqual({ itemNotFound: { code: 404, message: 'gone' } });
    expect(novaFault({ status: 409, message: 'busy' })).toEqual({
      conflictingRequest: { code: 409, message: 'busy' },
    });
    expect(novaFault({ status: 500, message: 'oops' })).toEqual({
      computeFault: { code: 500, message: 'oops' },
    });
    const conflict = new ConflictError('in use', 'NetworkInUse');
    expect(neutronFault({ status: conflict.status, message: conflict.message, type: conflict.type })).toEqual(
      {
        NeutronError: { type: 'NetworkInUse', message: 'in use', detail: '' },
      },
    );
  });
});
