#!/bin/sh
# keepalived notify script of proxy host 10.213.0.21: rendered by redkeeper from lab.yaml. Edits are overwritten by render.
# keepalived calls it with: INSTANCE|GROUP <name> MASTER|BACKUP|FAULT|STOP <priority>
line="$(date "+%Y-%m-%d %H:%M:%S") 10.213.0.21 vrrp $2: $3 (priority ${4:-?})"
echo "$line" >> /var/log/redkeeper/vrrp.log 2>/dev/null
logger -t redkeeper-vrrp -- "$line" 2>/dev/null
exit 0
