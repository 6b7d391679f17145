#!/bin/sh
# As the official Redis image's entrypoint: flags or a .conf file alone run the server with
# them (`docker run IMAGE --requirepass x`, `docker run IMAGE /path/redis.conf`); anything
# else is run as given (`docker run IMAGE pubsubd --requirepass x`, `… redis-server …`, `sh`).
set -e
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
    set -- pubsubd "$@"
fi
exec "$@"
