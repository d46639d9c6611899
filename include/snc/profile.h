/* Kernel profiles of generated code (runtime/backend/profile.c).
 *
 *   snc_cg_options o = {.profile = 1};   // the program's regions then call snc_profile_mark
 *   ... run steps ...
 *   snc_profile_print(program, stderr, 20);   // the 20 most expensive kernels, per region
 *
 * The counters are process-wide (one profiled program at a time). */
#ifndef SNC_PROFILE_H
#define SNC_PROFILE_H
#include <stdint.h>
#include <stdio.h>

#include "snc/codegen.h"

void snc_profile_mark(int32_t region, int32_t k);
void snc_profile_reset(void);
void snc_profile_print(const snc_program *p, FILE *out, int top);
/* Seconds per kernel call k < n of a region (0 train, 1 eval), summed since the last reset, into t;
   returns how many times the region ran. */
long snc_profile_times(int region, double *t, int n);
/* 1: time thread 0's CPU time from now on (as SNC_PROFILE_CLOCK=thread), 0: wall time */
void snc_profile_set_thread_clock(int on);

#endif
