# Horizon for a Novum cloud: installed by Novum's ops/horizon/install.sh as
# /etc/openstack-dashboard/local_settings.d/_9900_novum.py (rewritten at each run). Horizon execs this after
# Debian's local_settings.py, so what is set here wins.
#
# ops/horizon/serve.sh exports NOVUM_HORIZON_KEYSTONE_URL (--keystone-url) and NOVUM_HORIZON_DIR to the
# Apache it starts, so that one installed dashboard can serve several clouds.
import os

OPENSTACK_KEYSTONE_URL = os.environ.get('NOVUM_HORIZON_KEYSTONE_URL', '@KEYSTONE_URL@')
OPENSTACK_KEYSTONE_DEFAULT_DOMAIN = 'Default'
OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT = False
OPENSTACK_KEYSTONE_DEFAULT_ROLE = 'member'
# Compute 2 is novaclient's v2.1 API; Horizon negotiates the microversion of each feature with the
# version document Novum serves (2.1-2.96).
OPENSTACK_API_VERSIONS = {'identity': 3, 'compute': 2, 'image': 2, 'volume': 3}
ALLOWED_HOSTS = ['127.0.0.1', 'localhost', '[::1]']

# No memcached: sessions in files of the serving instance's directory (shared by its WSGI processes),
# everything else in Debian's local-memory cache.
SESSION_ENGINE = 'django.contrib.sessions.backends.file'
SESSION_FILE_PATH = os.path.join(os.environ.get('NOVUM_HORIZON_DIR', '/var/lib/novum-horizon'), 'sessions')

# Novum runs Keystone, Nova, Glance, Neutron and Heat. Panels of services missing from the catalog
# (Cinder, Swift, ...) hide themselves; these switch off what would still reach for them.
OPENSTACK_HYPERVISOR_FEATURES = {
    'can_set_mount_point': False,
    'can_set_password': False,
    'requires_keypair': False,
    'enable_quotas': True,
}
OPENSTACK_CINDER_FEATURES = {'enable_backup': False}
LAUNCH_INSTANCE_DEFAULTS = {
    'config_drive': False,
    'create_volume': False,
    'hide_create_volume': True,
    'disable_image': False,
    'disable_instance_snapshot': False,
    'disable_volume': True,
    'disable_volume_snapshot': True,
    'enable_scheduler_hints': True,
    'enable_metadata': True,
    'enable_net_ports': True,
    'default_availability_zone': 'Any',
}
OPENSTACK_NEUTRON_NETWORK = {
    'enable_auto_allocated_network': False,
    'enable_distributed_router': False,
    'enable_fip_topology_check': True,
    'enable_ha_router': False,
    'enable_ipv6': True,
    'enable_quotas': True,
    'enable_rbac_policy': False,
    'enable_router': True,
    'default_dns_nameservers': [],
    'supported_provider_types': ['*'],
    'segmentation_id_range': {},
    'extra_provider_types': {},
    'supported_vnic_types': ['normal'],
    'physical_networks': [],
}
OPENSTACK_ENABLE_PASSWORD_RETRIEVE = False

# The instance's Console tab shows the serial console page of this same dashboard in an iframe: Django's
# default X-Frame-Options (DENY) would blank it. Other sites still may not frame the dashboard.
X_FRAME_OPTIONS = 'SAMEORIGIN'
