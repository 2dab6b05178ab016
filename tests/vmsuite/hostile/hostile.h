/* SPDX-License-Identifier: GPL-2.0 */
/*
 * hostile.h - what the files of nb_hostile share. main.c lists the subcommands and holds the
 * helpers; cases.c has rmmod-busy, mmap-edges, exit-with-blocks and the signal-* cases;
 * pressure.c the fault-* cases (faults that cannot get a frame), pressure and works.
 */
#ifndef NB_HOSTILE_H
#define NB_HOSTILE_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../nb_test.h"

#define PAGE 4096UL
#define MiB (1024UL * 1024)
#define QUOTA_PARAM "/sys/module/numabuddy/parameters/fd_quota_pct"
#define PREZERO_PARAM "/sys/module/numabuddy/parameters/prezero_mb_s"

extern int failures, nr_nodes;
extern uint64_t pool_nodes;


/* main.c: helpers */
int touch(volatile char *p, int write);
int dev_open(int flags);
int dev_alloc(int fd, uint64_t size, int policy, int node, uint32_t flags,
	      struct nb_alloc *out, int reserve);
int dev_free(int fd, uint64_t offset);
int first_pool_node(void);
/* A module parameter written; its old value, or -1. */
long set_param(const char *path, long value);
int set_quota_pct(int pct);
void fill(volatile uint64_t *p, uint64_t bytes, uint64_t seed);
int check(volatile uint64_t *p, uint64_t bytes, uint64_t seed);

/* cases.c */
void t_rmmod_busy(void);
void t_mmap_edges(void);
void t_exit_with_blocks(void);
void t_signal_alloc(int mb);
void t_signal_migrate(int mb);

/* pressure.c */
void t_fault_over_quota(void);
void t_fault_pool_empty(void);
int works(const char *tag);
void t_pressure(int floor_mb);

#endif /* NB_HOSTILE_H */
