import { ArgumentsHost, Catch, ExceptionFilter } from '@nestjs/common';
import { ApiError, BadRequestError, sendFault } from '@novum/common';
import { HotError } from '@novum/hot';
import type { FastifyReply } from 'fastify';
import { CloudError } from './cloud';
import { heatFault } from './views';

/** Template errors are 400 StackValidationFailed; a peer service's refusal keeps its status class. */
@Catch(HotError, CloudError)
export class OrchestrationErrorFilter implements ExceptionFilter {
  catch(error: HotError | CloudError, host: ArgumentsHost): void {
    const fault =
      error instanceof HotError
        ? new BadRequestError(error.message, 'StackValidationFailed')
        : new ApiError(error.status >= 500 ? 503 : error.status, error.message);
    sendFault(host.switchToHttp().getResponse<FastifyReply>(), heatFault, fault);
  }
}
