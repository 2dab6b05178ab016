# shellcheck shell=bash
# shellcheck disable=SC2034 # TOPO_* are read by run.sh
# The VM NUMA topologies, in one place. Sourced by run.sh (bash).
#
# nb_topology NAME fills:
#   TOPO_DESC      one-line description
#   TOPO_MEM_MB    total guest RAM (must equal the sum of the node backends)
#   TOPO_CPUS      vCPU count (one socket per CPU: plain "-smp N" makes the guest WARN about
#                  a topology it cannot map onto the NUMA nodes)
#   TOPO_ARGS      array of QEMU arguments (-smp, memory backends, -numa ...)
#   TOPO_EXPECT    kernel cmdline words telling the guest what it should see, checked by
#                  nb_check_topology in lib.sh:
#                    nb_topo=NAME nb_nodes=N nb_cpuless=a,b nb_high=a,b nb_dist=row0/row1/...
#                  (nb_high: nodes whose memory must start at or above 4 GiB)
#
# Physical layout on the default "pc" machine: nodes are laid out in order from 0; once RAM
# reaches 3.5 GiB QEMU keeps only 3 GiB below 4 GiB and places the rest from 4 GiB up, so in
# 4node and big the last node lives entirely above 4 GiB.

NB_TOPOLOGIES="2node 4node cpuless big big2"

# _nb_node ID SIZE_MB [CPU]  -- one backend + one NUMA node (no CPU when CPU is empty).
_nb_node() {
	local id=$1 mb=$2 cpu=${3:-}
	TOPO_ARGS+=(-object "memory-backend-ram,id=m$id,size=${mb}M")
	if [ -n "$cpu" ]; then
		TOPO_ARGS+=(-numa "node,nodeid=$id,memdev=m$id,cpus=$cpu")
	else
		TOPO_ARGS+=(-numa "node,nodeid=$id,memdev=m$id")
	fi
	TOPO_MEM_MB=$((TOPO_MEM_MB + mb))
}

# _nb_dist "row0" "row1" ...  -- full SLIT matrix, rows of space-separated distances.
_nb_dist() {
	local src=0 dst row val rows=()
	for row in "$@"; do
		dst=0
		for val in $row; do
			[ "$src" -ne "$dst" ] && TOPO_ARGS+=(-numa "dist,src=$src,dst=$dst,val=$val")
			dst=$((dst + 1))
		done
		rows+=("${row// /,}")
		src=$((src + 1))
	done
	local IFS=/
	TOPO_DIST="${rows[*]}"
}

nb_topology() {
	TOPO_DESC='' TOPO_MEM_MB=0 TOPO_CPUS=0 TOPO_ARGS=() TOPO_DIST='' TOPO_CPULESS='' TOPO_HIGH=''
	local nodes
	case "$1" in
	2node)
		TOPO_DESC="2 nodes x 1 GiB, one CPU each"
		TOPO_CPUS=2 nodes=2
		_nb_node 0 1024 0
		_nb_node 1 1024 1
		;;
	4node)
		TOPO_DESC="4 nodes x 1 GiB, one CPU each, chain SLIT, node3 above 4 GiB"
		TOPO_CPUS=4 nodes=4
		_nb_node 0 1024 0
		_nb_node 1 1024 1
		_nb_node 2 1024 2
		_nb_node 3 1024 3
		TOPO_HIGH=3
		# A chain 0-1-2-3: every pair has a distinct distance, so a fallback order built
		# from the wrong row (or a transposed matrix) shows up.
		_nb_dist "10 16 22 28" \
			 "16 10 16 22" \
			 "22 16 10 16" \
			 "28 22 16 10"
		;;
	cpuless)
		TOPO_DESC="nodes 0,1 with one CPU each, node2 memory-only"
		TOPO_CPUS=2 nodes=3
		_nb_node 0 1024 0
		_nb_node 1 1024 1
		_nb_node 2 1024
		TOPO_CPULESS=2
		;;
	big)
		TOPO_DESC="node0 3 GiB (room for 1 GiB + 6 MiB + 12 KiB), node1 1 GiB above 4 GiB"
		TOPO_CPUS=2 nodes=2
		_nb_node 0 3072 0
		_nb_node 1 1024 1
		TOPO_HIGH=1
		;;
	big2)
		TOPO_DESC="node0 and node1 3 GiB each (an aligned GiB in both pools), node1 above 4 GiB"
		TOPO_CPUS=2 nodes=2
		_nb_node 0 3072 0
		_nb_node 1 3072 1
		TOPO_HIGH=1
		;;
	*)
		echo "unknown topology '$1' (known: $NB_TOPOLOGIES)" >&2
		return 1
		;;
	esac
	TOPO_ARGS=(-smp "$TOPO_CPUS,sockets=$TOPO_CPUS,cores=1,threads=1" "${TOPO_ARGS[@]}")
	TOPO_EXPECT="nb_topo=$1 nb_nodes=$nodes"
	[ -n "$TOPO_CPULESS" ] && TOPO_EXPECT+=" nb_cpuless=$TOPO_CPULESS"
	[ -n "$TOPO_HIGH" ] && TOPO_EXPECT+=" nb_high=$TOPO_HIGH"
	[ -n "$TOPO_DIST" ] && TOPO_EXPECT+=" nb_dist=$TOPO_DIST"
	return 0
}
