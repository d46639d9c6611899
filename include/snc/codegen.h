/* From a differentiated graph to one LLVM module: memory plan, fusion, kernels, entry points.
 *
 *   snc_program *p = snc_program_build(g, NULL, &err);   // g: after snc_autodiff (or forward only)
 *   // p->module holds P_init, P_train_step, P_eval (include/snc/program.h); hand it to the JIT
 *   // (snc_jit_new takes the module) or to the object writer, then:
 *   snc_program_free(p);                                  // frees the plan (and the module if still held)
 *
 * The program keeps a pointer to g, which must outlive it. */
#ifndef SNC_CODEGEN_H
#define SNC_CODEGEN_H
#include <llvm-c/Core.h>
#include <stdio.h>

#include "snc/ir.h"

/* The memory plan: every buffer of the step lives in one arena at a fixed offset. */
typedef struct snc_layout {
  int64_t *offset;         /* per node: byte offset in the arena, -1 when the node has no buffer */
  int64_t *bytes;          /* per node: buffer size */
  int64_t arena_bytes;     /* size of the arena (planned with liveness) */
  int64_t unplanned_bytes; /* the sum of all buffers, for comparison */
  int64_t persistent_bytes;/* parameters, state and constants (at the start of the arena) */
  int bp;                  /* batch padded to a multiple of the vector width */
  int *live_end;           /* per node: last node index that reads it (for dumps) */
} snc_layout;

/* Fusion (compiler/passes/fuse.c): into[i] = the node whose kernel computes node i (i itself when
 * unfused); members of a chain that are not its root have no buffer. */
int snc_fuse_plan(const snc_graph *g, int *into, snc_error *err);
int snc_fuse_elementwise(snc_opcode op);

/* Plans the arena for g (compiler/passes/memplan.c). Freed with snc_layout_free. no_reuse gives
 * every buffer its own space (for tests that read every intermediate); into (may be NULL) is the
 * fusion plan: absorbed nodes get no buffer. */
int snc_layout_plan(const snc_graph *g, const int *into, int no_reuse, snc_layout *lay, snc_error *err);
void snc_layout_free(snc_layout *lay);
/* A view shares its input's buffer at this byte offset (reshape, leading-axis slice); -1 if not. */
int64_t snc_layout_view_delta(const snc_graph *g, int node, int bp);
/* Is the node's buffer in the internal feature-major, batch-innermost layout? */
int snc_layout_batched(const snc_graph *g, int node);

typedef struct snc_cg_options {
  const char *prefix; /* symbol prefix; NULL: the model name */
  FILE *dump_graph;   /* print the kernels and the memory plan here when not NULL */
  int no_reuse;       /* every buffer its own space (tests) */
  int no_fusion;      /* one kernel per node */
  int profile;        /* regions call snc_profile_mark(region, k) on thread 0 after kernel k's barrier */
} snc_cg_options;

typedef struct snc_program {
  LLVMContextRef context;
  LLVMModuleRef module; /* owned until taken: whoever takes it sets this to NULL; the context stays
                           the program's and must outlive the taker's use of the module */
  const snc_graph *g;
  snc_layout layout;
  int *into;            /* the fusion plan (snc_fuse_plan) */
  char prefix[64];
  int ninputs, *inputs;   /* node ids, in the order of snc_step_args.inputs */
  int noutputs, *outputs; /* node ids the evaluation entry exports, in snc_step_args.outputs order:
                             each graph output's prediction, then its labels when those are computed
                             (not an input); the loss comes after them */
  int nkernels;                 /* distinct kernel functions */
  int ncalls[2];                /* kernel calls in the train [0] and eval [1] regions */
  char **call_names[2];         /* per call: the node it computes ("op.node"), for profiles */
  double build_seconds;
} snc_program;


snc_program *snc_program_build(const snc_graph *g, const snc_cg_options *opt, snc_error *err);
void snc_program_free(snc_program *p);

#endif
