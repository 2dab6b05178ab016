#!/usr/bin/env bash
# debian-sources.sh - "URI SUITE" for every enabled deb entry of this machine's apt sources, from
# one-line .list files and deb822 .sources files alike, in file order. The scripts that
# debootstrap a root (fresh-machine.sh, trixie-root.sh) take their mirror from it, so no host
# name is ever written down in this repository.
set -euo pipefail
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
	[ -r "$f" ] || continue
	# deb [opts] URI SUITE COMPONENT...
	sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && NF >= 3 { print $2, $3 }'
done
for f in /etc/apt/sources.list.d/*.sources; do
	[ -r "$f" ] || continue
	awk '
		function flush(  i, j, u, s) {
			if (types ~ /(^| )deb( |$)/ && enabled !~ /^[Nn]o/) {
				nu = split(uris, u, " "); ns = split(suites, s, " ")
				for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++) print u[i], s[j]
			}
			types = uris = suites = enabled = ""
		}
		/^[ \t]*#/ { next }
		/^[ \t]*$/ { flush(); next }
		/^[ \t]/ { next }
		{
			key = tolower($1); sub(/:$/, "", key); $1 = ""; sub(/^ +/, "")
			if (key == "types") types = $0
			else if (key == "uris") uris = $0
			else if (key == "suites") suites = $0
			else if (key == "enabled") enabled = $0
		}
		END { flush() }' "$f"
done
