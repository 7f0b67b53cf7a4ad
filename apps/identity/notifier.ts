import { Injectable } from '@nestjs/common';
import { MessageBus } from '@novum/bus';
import { rootLogger } from '@novum/common';

/** The bus topic Keystone-style notifications go to; other services subscribe to clean up after deletes. */
export const NOTIFICATIONS_TOPIC = 'notifications';

export type IdentityResource =
  'domain' | 'project' | 'user' | 'role' | 'role_assignment' | 'application_credential';

/**
 * Keystone's "basic" notifications (`identity.project.deleted`, payload `{"resource_info": id}`), published
 * after the change is committed. Fire and forget: a broker outage delays notifications, never API calls.
 */
@Injectable()
export class IdentityNotifier {
  private readonly log = rootLogger().child({ service: 'identity', component: 'notifier' });

  constructor(private readonly bus: MessageBus) {}

  emit(
    resource: IdentityResource,
    action: 'created' | 'updated' | 'deleted',
    resourceInfo: string | Record<string, string>,
  ) {
    const event = `identity.${resource}.${action}`;
    this.bus
      .publish(NOTIFICATIONS_TOPIC, event, { resource_info: resourceInfo })
      .catch((error) => this.log.warn({ err: error, event }, 'could not publish a notification'));
  }
}
