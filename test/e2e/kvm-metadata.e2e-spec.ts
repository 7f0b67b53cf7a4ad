import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { missingVmPrerequisites, vmTestImage } from '../../libs/virt/testing/vm-image';
import { CloudHandle, startCloud, testMode } from './support/cloud';
import { hostTestSkip } from './support/host';
import { openstackJson, openstackOk } from './support/openstack';

jest.setTimeout(180_000);

const skip = hostTestSkip('kvm metadata', missingVmPrerequisites());

/**
 * The metadata service from a QEMU guest (TCG): its tap is on the network's bridge like a container's veth.
 * The tiny image has no network configuration of its own, so the user data sets the port's address and
 * the on-link route that network_data.json gives (cloud-init would apply it), then asks the service.
 */
(skip ? describe.skip : describe)(
  `kvm guest and the metadata service (${testMode()}${skip ? `; skipped: ${skip}` : ''})`,
  () => {
    let cloud: CloudHandle;
    let demo: Record<string, string>;
    let serverId = '';
    let networkId = '';

    beforeAll(async () => {
      const image = vmTestImage();
      cloud = await startCloud({
        portBase: 25500,
        extraEnv: { NOVUM_COMPUTE_DRIVERS: 'kvm,fake', NOVUM_KVM_ACCEL: 'tcg' },
      });
      const admin = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-admin' };
      demo = { OS_CLIENT_CONFIG_FILE: cloud.cloudsYaml, OS_CLOUD: 'novum-demo' };
      await openstackOk(
        admin,
        ...['image', 'create', '--disk-format', 'qcow2', '--container-format', 'bare', '--public'],
        ...['--file', image, 'tiny'],
      );
      networkId = (await openstackJson(demo, 'network', 'create', 'md-vm')).id;
      await openstackOk(
        demo,
        ...['subnet', 'create', '--network', 'md-vm', '--subnet-range', '10.79.5.0/24', 'md-vm-subnet'],
      );
    }, 180_000);

    afterAll(async () => {
      if (!cloud) return;
      if (serverId) await openstackOk(demo, 'server', 'delete', '--wait', serverId).catch(() => undefined);
      await cloud.destroy();
    }, 60_000);

    it('answers a VM its own meta_data.json over its tap, and network_data.json routes the address on-link', async () => {
      const userData = join(cloud.dataDir, 'vm-user-data');
      writeFileSync(
        userData,
        [
          '#!/bin/sh',
          'net=/mnt/config/openstack/latest/network_data.json',
          'echo "md-route-in-network-data=$(grep -c 169.254.169.254 $net)"',
          'ip link set eth0 up',
          'ip addr add 10.79.5.20/24 dev eth0',
          'ip route add 169.254.169.254/32 dev eth0',
          'for attempt in 1 2 3 4 5; do',
          '  answer=$(wget -q -O - http://169.254.169.254/openstack/latest/meta_data.json) && break',
          '  sleep 1',
          'done',
          'echo "md-answer=$answer"',
          'echo "md-instance-id=$(wget -q -O - http://169.254.169.254/latest/meta-data/instance-id)"',
          '',
        ].join('\n'),
      );
      const server = await openstackJson(
        demo,
        ...['server', 'create', '--flavor', 'm1.tiny', '--image', 'tiny', '--user-data', userData],
        ...['--nic', `net-id=${networkId},v4-fixed-ip=10.79.5.20`, '--wait', 'vm-md'],
      );
      serverId = server.id;
      expect(server.status).toBe('ACTIVE');
      const deadline = Date.now() + 90_000;
      let log = '';
      while (Date.now() < deadline && !/md-instance-id=\S/.test(log)) {
        log = execFileSync('openstack', ['console', 'log', 'show', serverId], {
          env: { ...process.env, ...demo },
          encoding: 'utf8',
        });
        await new Promise((r) => setTimeout(r, 2000));
      }
      expect(log).toContain('md-route-in-network-data=1');
      const answer = /md-answer=(\{.*\})/.exec(log)?.[1];
      expect(answer && JSON.parse(answer)).toMatchObject({ uuid: serverId, name: 'vm-md' });
      expect(log).toContain(`md-instance-id=i-${serverId.replace(/-/g, '').slice(0, 8)}`);
    });

    it('removes the network’s metadata namespace and link with the server', async () => {
      const present = () => ({
        netns: execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).includes(`novum-md-${networkId}`),
        link: execFileSync('ip', ['-br', 'link'], { encoding: 'utf8' }).includes(
          `novumm${networkId.replace(/-/g, '').slice(0, 9)}`,
        ),
      });
      expect(present()).toEqual({ netns: true, link: true });
      await openstackOk(demo, 'server', 'delete', '--wait', serverId);
      serverId = '';
      expect(present()).toEqual({ netns: false, link: false });
    });
  },
);
