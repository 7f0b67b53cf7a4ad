import { Controller, Get, Param } from '@nestjs/common';
import { Auth, AuthContext } from '@novum/auth';
import { NotFoundError } from '@novum/common';
import { extensionView, NOVA_EXTENSIONS } from '../extensions';

/** `GET /extensions`: Nova's fixed list of the v2.1 API's former extensions, to any caller. */
@Controller('v2.1/extensions')
export class ExtensionsController {
  @Get()
  list(@Auth() _auth: AuthContext) {
    return { extensions: NOVA_EXTENSIONS.map(extensionView) };
  }

  @Get(':alias')
  show(@Auth() _auth: AuthContext, @Param('alias') alias: string) {
    const extension = NOVA_EXTENSIONS.find(([a]) => a === alias);
    if (!extension) throw new NotFoundError('The resource could not be found.');
    return { extension: extensionView(extension) };
  }
}
