#!/usr/bin/env bash
# Serves Horizon (Debian's openstack-dashboard, configured by ops/horizon/install.sh) on loopback with a
# private Apache instance running Debian's mod_wsgi, so that the host's own Apache and its port 80 are
# left alone.
#
#   bash ops/horizon/serve.sh [--port PORT] [--dir DIR] [--keystone-url URL] [--foreground]
#
# DIR (default /var/lib/novum-horizon) gets the Apache configuration, pid file, sockets and logs
# (error.log, access.log; Horizon's own log lines go to error.log). Without --foreground Apache detaches
# and a running instance of the same DIR is restarted; with it, Apache stays in the foreground (tests
# run it so, and stop it by its pid). --keystone-url overrides the Keystone URL written at install.
set -euo pipefail
PORT=${NOVUM_HORIZON_PORT:-8080}
DIR=${NOVUM_HORIZON_DIR:-/var/lib/novum-horizon}
KEYSTONE_URL=${NOVUM_HORIZON_KEYSTONE_URL:-}
FOREGROUND=0
while [ $# -gt 0 ]; do
  case "$1" in
    --port) PORT=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --keystone-url) KEYSTONE_URL=$2; shift 2 ;;
    --foreground) FOREGROUND=1; shift ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
[ -f /usr/share/openstack-dashboard/wsgi.py ] || { echo "Horizon is not installed: run ops/horizon/install.sh" >&2; exit 1; }

mkdir -p "$DIR/run" "$DIR/sessions"
# The WSGI daemon runs as www-data (Debian's owner of Horizon's secret key and static files): it reaches
# its socket through these directories and keeps the sessions.
chmod 0755 "$DIR" "$DIR/run"
chown www-data:www-data "$DIR/sessions"
chmod 0700 "$DIR/sessions"
MODULES=/usr/lib/apache2/modules
# Debian's collected static tree has no horizon/lib/angular: xstatic's angular and angular_schema_form name the
# same directory, and collectstatic copies it under the second name only. The serial console page (an
# instance's Console tab) loads angular.js from the first, so it is served from the package's directory.
ANGULAR=/usr/share/javascript/angular.js
ANGULAR_ALIAS=
if [ ! -e /var/lib/openstack-dashboard/static/horizon/lib/angular ] && [ -f $ANGULAR/angular.js ]; then
  ANGULAR_ALIAS="Alias /static/horizon/lib/angular/ $ANGULAR/
<Directory $ANGULAR>
  Require all granted
</Directory>"
fi
cat > "$DIR/apache2.conf" <<CONF
# Written by ops/horizon/serve.sh; rewritten at each start.
ServerRoot /etc/apache2
ServerName 127.0.0.1
DefaultRuntimeDir $DIR/run
PidFile $DIR/apache2.pid
Mutex file:$DIR/run default
User www-data
Group www-data
Listen 127.0.0.1:$PORT
LoadModule mpm_event_module $MODULES/mod_mpm_event.so
LoadModule authz_core_module $MODULES/mod_authz_core.so
LoadModule alias_module $MODULES/mod_alias.so
LoadModule mime_module $MODULES/mod_mime.so
LoadModule headers_module $MODULES/mod_headers.so
LoadModule wsgi_module $MODULES/mod_wsgi.so
TypesConfig /etc/mime.types
ErrorLog $DIR/error.log
LogLevel warn
LogFormat "%h %l %u %t \"%r\" %>s %b %D" timed
CustomLog $DIR/access.log timed
WSGISocketPrefix $DIR/run/wsgi
# As Debian's openstack-dashboard-apache site, on loopback only.
WSGIDaemonProcess novum-horizon user=www-data group=www-data processes=2 threads=10 display-name=%{GROUP}
WSGIProcessGroup novum-horizon
WSGIApplicationGroup %{GLOBAL}
WSGIScriptAlias / /usr/share/openstack-dashboard/wsgi.py process-group=novum-horizon
$ANGULAR_ALIAS
Alias /static /var/lib/openstack-dashboard/static/
<Directory /usr/share/openstack-dashboard>
  Require all granted
</Directory>
<Directory /var/lib/openstack-dashboard/static>
  Require all granted
</Directory>
CONF

# Horizon's settings (local_settings.d/_9900_novum.py) read the Keystone URL from here when it is set.
[ -n "$KEYSTONE_URL" ] && export NOVUM_HORIZON_KEYSTONE_URL=$KEYSTONE_URL
export NOVUM_HORIZON_DIR=$DIR
if [ $FOREGROUND = 1 ]; then
  exec /usr/sbin/apache2 -f "$DIR/apache2.conf" -DFOREGROUND
fi
if [ -f "$DIR/apache2.pid" ] && kill -0 "$(cat "$DIR/apache2.pid")" 2>/dev/null; then
  /usr/sbin/apache2 -f "$DIR/apache2.conf" -k stop
  for _ in $(seq 50); do [ -f "$DIR/apache2.pid" ] || break; sleep 0.2; done
fi
/usr/sbin/apache2 -f "$DIR/apache2.conf" -k start
echo "Horizon: http://127.0.0.1:$PORT/ (logs in $DIR)"
