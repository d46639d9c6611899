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
  unsigned char *compact;  /* per node: its buffer holds the compact form of a pooled activation
                              (snc_fuse_compact), not the activation; NULL without a fusion plan */
  int64_t *scratch_off;    /* per node: the offset of its kernel's scratch (live only while the kernel
                              runs), -1 when it has none */
  int64_t *scratch_bytes;  /* per node: that scratch's size, 0 when none */
} snc_layout;

/* Fusion (compiler/passes/fuse.c): into[i] = the node whose kernel computes node i (i itself when
 * unfused). into[i] > i: a member of the chain rooted there, computed in registers, no buffer;
 * 0 <= into[i] < i: a side output that the kernel of into[i] also stores (a weight gradient's kernel
 * storing the bias gradient), with a buffer placed where that kernel runs; into[i] <= -2: a member
 * of the chain rooted at r = -2 - into[i] (r > i) that r's kernel also stores, as a side output (a
 * training graph's activation that a convolution's kernel pools: the backward pass reads it). */
int snc_fuse_plan(const snc_graph *g, int *into, snc_error *err);
int snc_fuse_elementwise(snc_opcode op);
/* Is the side output a (an activation a pooling kernel stores for the backward pass) needed only
 * at each window's argmax? So it is when every backward reader is in a chain headed by that
 * pooling's gradient whose other members keep a zero gradient zero whatever activation they read
 * (tanh_dx, sigmoid_dx, relu_dx, dropout_dx, scale): the chain's value is zero off the argmax, and at the
 * argmax the activation is the window's maximum, which the pooling's output holds. Its buffer then
 * holds, per pooled element and lane, the argmax's row-major position in the window (one byte,
 * 1/16 of the activation for 2 x 2 windows), and the pooling's output stays alive as long as it.
 * The pooling kernel writes it (codegen/emit_conv.c), the chains read it (emit_pool.c, emit_dw.c),
 * to the same bits. */
int snc_fuse_compact(const snc_graph *g, const int *into, int a);
/* Has node i a buffer of its own under the plan into (may be NULL)? Views aside. */
static inline int snc_fuse_stored(const int *into, int i) { return !into || into[i] <= i; }
/* The root of the chain whose kernel computes node i (i itself when it is a kernel of its own). */
static inline int snc_fuse_root(const int *into, int i) { return !into ? i : into[i] >= 0 ? into[i] : -2 - into[i]; }
/* Is node i a side output: computed and stored by another node's kernel? */
static inline int snc_fuse_side(const int *into, int i) { return into && into[i] != i && into[i] < i; }
/* Does the forward convolution n run on the tile emitter (codegen/emit_conv.c)? Its kernel can then
   end in a max pooling (the fusion pass's pool_takes). */
int snc_cg_conv_tiles(const snc_graph *g, const snc_node *n);
/* Can the weight gradient dw compute its dy from a chain headed by the tiling max pooling gradient
   pool_dx (codegen/emit_dw.c, "prologue")? Few taps, and a window row of dy fits its scratch. */
int snc_cg_dw_prologue_fits(const snc_graph *g, const snc_node *dw, const snc_node *pool_dx);

/* The lanes a batch of n rows runs on: n padded to the vector width (snc_layout.bp). */
static inline int snc_cg_batch_lanes(int n) { return (n + 15) / 16 * 16; }

/* Plans the arena for g (compiler/passes/memplan.c). Freed with snc_layout_free. no_reuse gives
 * every buffer its own space (for tests that read every intermediate); into (may be NULL) is the
 * fusion plan: absorbed nodes get no buffer, side outputs one placed at their kernel's node.
 * scratch (may be NULL): per node, the bytes of scratch its kernel needs while it runs. */
int snc_layout_plan(const snc_graph *g, const int *into, int no_reuse, const int64_t *scratch, snc_layout *lay, snc_error *err);
void snc_layout_free(snc_layout *lay);
/* A view shares its input's buffer at this byte offset (reshape, leading-axis slice); -1 if not. */
int64_t snc_layout_view_delta(const snc_graph *g, int node, int bp);
/* Is the node's buffer in the internal feature-major, batch-innermost layout? */
int snc_layout_batched(const snc_graph *g, int node);

/* A kernel's schedule (compiler/codegen/cg_sched.c; docs/architecture.md, "Schedules"): the register
 * block and loop order of a convolution or matrix product. No schedule changes a result's bits:
 * every output element is summed in the same order whatever the schedule or the thread count.
 *   tile   (forward and dx of convolutions): r output channels x p positions of a row x v batch
 *          vectors of accumulators; order 0: channel blocks outermost (a thread's share is a range
 *          of output channels), 1: channel blocks innermost (a thread's share is a range of rows)
 *   gather (linear layers, long padded rows): r output channels x v batch vectors (p = 1, order 0)
 *   dw     (weight gradients): r output channels x p input channels of weights (v = 1); order 0:
 *          input-channel blocks innermost, 1: output-channel blocks innermost
 *   wino   (forward 3x3 convolutions as Winograd F(4x4, 3x3), codegen/emit_wino.c): r output
 *          channels per block of the transformed products (p = v = 1, order 0)
 * Text form (snc_cg_schedule_format / _parse): "tile r6 p4 v1 o0 u24". */
enum { SNC_SCHED_NONE = 0, SNC_SCHED_TILE, SNC_SCHED_GATHER, SNC_SCHED_DW, SNC_SCHED_WINO, SNC_SCHED_WDW };
typedef struct snc_cg_schedule {
  int kind; /* SNC_SCHED_TILE, _GATHER, _DW, _WINO or _WDW */
  int r, p, v, order;
  int u;    /* a fused epilogue (tile, gather): the block's vectors it takes per step, node by node
               side by side (all of them: straight from the accumulators); 1 without an epilogue */
} snc_cg_schedule;
#define SNC_CG_SCHEDULE_VERSION 4 /* bumped when a schedule's meaning or the candidates change */
int snc_cg_schedule_format(const snc_cg_schedule *s, char *buf, size_t n); /* returns the length */
int snc_cg_schedule_parse(const char *text, snc_cg_schedule *s);           /* 0, or -1 if malformed */
int snc_cg_schedule_equal(const snc_cg_schedule *a, const snc_cg_schedule *b);

struct snc_program;
typedef struct snc_cg_options {
  const char *prefix; /* symbol prefix; NULL: the model name */
  FILE *dump_graph;   /* print the kernels and the memory plan here when not NULL */
  int no_reuse;       /* every buffer its own space (tests) */
  int no_fusion;      /* one kernel per node */
  int direct_conv;    /* every convolution as a direct sum, none as Winograd F(4x4, 3x3) (also when
                         $SNC_DIRECT_CONV is 1) */
  int profile;        /* regions call snc_profile_mark(region, k) on thread 0 after kernel k's barrier */
  int no_eval;        /* with a training step: no P_eval (the caller evaluates on a build of its own,
                         snc/train.h "evaluation on a wider build"); its kernels are neither emitted
                         nor compiled */
  int split_step;     /* also P_grad_step (the step without its optimizer updates) and P_apply_step
                         (the updates alone), for data-parallel training that reduces the gradients
                         between the two (runtime/train/train.c) */
  /* Embedded weights (`snc compile --embed-weights`): when set, called once the memory plan is known
     with blob = p->layout.persistent_bytes bytes (zeroed, constants in place) to fill with every
     PARAM's values at p->layout.offset[node]; P_init then copies the blob and ignores its seed.
     Returns 0, or -1 with err set (the build fails). */
  int (*embed)(const struct snc_program *p, void *blob, void *user, snc_error *err);
  void *embed_user;
  /* Schedules: when set, called once per scheduled kernel with its name ("op.node"), its shape key
     (the same for kernels of the same shape, e.g. "conv2d+dropout+tanh 32x6x6>64x4x4 k3x3 s1x1
     p0x0 b112") and the valid schedules cands[0..n), cands[0] the built-in default; returns the
     index of the one to use (anything out of range: the default). NULL: the defaults. */
  int (*schedule)(void *user, const char *name, const char *shape, const snc_cg_schedule *cands, int n);
  void *schedule_user;
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
  int nreused;                  /* calls of an earlier call's kernel whose slot table was mapped, not
                                   emitted (compiler/codegen/cg_reuse.c) */
  int ncalls[2];                /* kernel calls in the train [0] and eval [1] regions */
  int nbarriers[2];             /* barriers between them (independent neighbours share none) */
  int *call_nodes[2];           /* per call: the node it computes (its chain's root), -1 for the copies */
  unsigned char *call_waits[2]; /* per call: 1 when a barrier follows it */
  char **call_names[2];         /* per call: the node it computes ("op.node"), for profiles, and its
                                   schedule when it has one ("... [tile r6 p4 v1 o0]") */
  char **call_shapes[2];        /* per call: the shape key of its schedule, NULL when it has none */
  double build_seconds;
  int embedded;         /* P_init copies embedded weights (snc_cg_options.embed) */
  int no_eval;          /* built without P_eval (snc_cg_options.no_eval): region 1 has no calls */
  int opt_level;        /* a module read back by snc_program_load_bitcode: the level it was optimised at */
} snc_program;


snc_program *snc_program_build(const snc_graph *g, const snc_cg_options *opt, snc_error *err);
void snc_program_free(snc_program *p);

/* ---- the C header beside an object file (compiler/codegen/cg_header.c; docs/embedding.md) ------ */

typedef struct snc_header_opts {
  const char *object;       /* the object file's name, for the usage text */
  const char *triple, *cpu; /* what it was compiled for (NULL: not said) */
  /* embedded weights (p->embedded): the checkpoint and its run, recorded as macros and as the
     default metadata of checkpoints the header's save function writes */
  const char *weights_path;
  uint64_t seed;
  int epoch;
  int64_t step;
  int standardized;
  float mean, std;
} snc_header_opts;

/* Writes the C header of p's entry points to path (atomically): the snc_step_args ABI, sizes and
 * shapes as macros, the entry points' declarations and header-only helpers (arena, checkpoint load
 * and save specialised to p's tensor table), every symbol prefixed with p->prefix. o may be NULL. */
int snc_program_write_header(const snc_program *p, const snc_header_opts *o, const char *path, snc_error *err);

/* ---- modules that carry their model (compiler/codegen/cg_meta.c; docs/embedding.md) ---------- */

/* What a written module records so `snrun` can run it without the model file. */
typedef struct snc_program_source {
  const char *yaml;        /* the model file's text, exactly as compiled */
  size_t yaml_len;
  const char *const *sets; /* the --set overrides, "name=value" each */
  int nsets;
  int autodiff;            /* the graph was differentiated with snc_autodiff(g, 0) */
  int opt_level;           /* the level the module is optimised at before it is written (0..3) */
} snc_program_source;

/* Adds the named metadata "snc.model" to p->module: the model text and overrides, the graph's
 * fingerprint, the arena layout of every node the runtime touches (parameters, constants, the loss),
 * the input and output order and the optimisation level. Call before optimising or writing. */
int snc_program_attach_source(snc_program *p, const snc_program_source *src, snc_error *err);

/* Reads a bitcode file written by `snc compile --emit=bc`: parses the module into a new context,
 * rebuilds the graph from the recorded model text and overrides (and autodiff), checks it against the
 * recorded fingerprint, and returns a program whose module is the one read (nothing is rebuilt from
 * the graph: no kernels, no plan). *g_out receives the graph (the caller frees it after the program;
 * p->g points to it). Errors name the file. */
snc_program *snc_program_load_bitcode(const char *path, snc_graph **g_out, snc_error *err);

#endif
