import { ArgumentMetadata, Injectable, ValidationError, ValidationPipe } from '@nestjs/common';
import { BadRequestError } from './faults';

function describe(errors: ValidationError[], parent = ''): string[] {
  return errors.flatMap((error) => {
    const path = parent ? `${parent}/${error.property}` : error.property;
    const own = error.constraints
      ? [`Invalid input for field '${path}': ${Object.values(error.constraints).join(', ')}.`]
      : [];
    return [...own, ...describe(error.children ?? [], path)];
  });
}

const PLAIN_TYPES = [String, Boolean, Number, Array, Object];

/**
 * class-validator on every DTO, answering 400 with a message that names the field. A body that is not a
 * JSON object (null, an array, a string) is refused before validation, since class-validator lets it through.
 */
@Injectable()
export class NovumValidationPipe extends ValidationPipe {
  constructor() {
    super({
      transform: true,
      forbidUnknownValues: false,
      exceptionFactory: (errors) => new BadRequestError(describe(errors).join(' ')),
    });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const isDto =
      typeof metadata.metatype === 'function' && !PLAIN_TYPES.includes(metadata.metatype as never);
    if (
      metadata.type === 'body' &&
      isDto &&
      (typeof value !== 'object' || value === null || Array.isArray(value))
    ) {
      throw new BadRequestError('Malformed request body: a JSON object is required.');
    }
    return super.transform(value, metadata);
  }
}
