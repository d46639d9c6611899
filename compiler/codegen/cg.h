/* Code generation internals: the LLVM-C builder context and the helpers every emitter uses.
 * Emitters write one kernel each into its own function `void k(ptr arena, ptr args, i32 tid, i32 nt)`;
 * the parallel region calls the kernels in order with a barrier between them. */
#ifndef SNC_CODEGEN_CG_H
#define SNC_CODEGEN_CG_H
#include <llvm-c/Core.h>

#include "snc/codegen.h"
#include "snc/ir.h"

#define SNC_VW 16 /* floats per vector (AVX-512); the batch is padded to a multiple of it */

typedef struct snc_cg {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef i1, i8, i32, i64, f32, f64, ptr, vf, vi32, vi64, vi1, voidt, kernel_ty;
  const snc_graph *g;
  const snc_layout *lay;
  /* in the current kernel: its buffers and data come from a per-call table of i64 ("slots"), so
     nodes with the same kernel key share one function (e.g. both branches, train and eval) */
  LLVMValueRef fn, arena, args, tid, nt, offs;
  int slot_node[32]; /* node whose buffer offset the slot holds, or -1 for a data value */
  int64_t slot_val[32];
  int slot_src[32];  /* a data value's node and what of it (cg_data_of), else -1 and 0 */
  int slot_kind[32];
  int nslots;
  int nbarriers; /* barriers of the region being built */
  int training;
  int nkernels;
  int profile;
  const int *into; /* fusion plan */
  int epi[16];     /* the epilogue of the kernel being emitted: fused nodes after its head, in order */
  int nepi;
  int side[4];     /* the side outputs it also stores (fuse.c: into[s] = its root, s after the root) */
  int nside;
  /* while subst_val is set, cg_operand gives it for node subst_node instead of loading the node's
     value (a compact activation's readers: the window's maximum) */
  int subst_node;
  LLVMValueRef subst_val;
  int direct_conv; /* snc_cg_options.direct_conv: no Winograd */
  snc_error *err;
  /* schedules (cg_sched.c): the options' chooser, and the choice for the kernel being emitted */
  int (*sched_fn)(void *user, const char *name, const char *shape, const snc_cg_schedule *cands, int n);
  void *sched_user;
  char kname[160];       /* "op.node" of the kernel being emitted */
  snc_cg_schedule sched; /* its schedule (kind SNC_SCHED_NONE when it has none) */
  char sched_shape[256]; /* its shape key */
} snc_cg;

/* A kernel's slot table in terms of its chain (cg_reuse.c): a node with the same kernel key maps it
 * instead of emitting the same code again. */
typedef struct cg_slots {
  int n, node[32], src[32], kind[32];
  int64_t val[32];
  int head, root, nepi, epi[16], nside, side[4];
  int reusable; /* every data slot is a value of a node (cg_data_of) */
} cg_slots;
void cg_slots_record(const snc_cg *cg, int head, int root, cg_slots *s); /* after emitting root's kernel */
/* root's chain (cg->epi, cg->side set): the table mapped into cg's slot_* arrays; 0 when it does not
   map (cg's slot_* arrays are then undefined until the next kernel begins) */
int cg_slots_map(snc_cg *cg, const cg_slots *s, int head, int root);

typedef struct snc_cg_loop {
  LLVMBasicBlockRef header, body, exit;
  LLVMValueRef iv, phi, step;
} snc_cg_loop;

/* constants and types */
LLVMValueRef cg_i64(snc_cg *cg, int64_t v);
LLVMValueRef cg_i32(snc_cg *cg, int32_t v);
LLVMValueRef cg_f32(snc_cg *cg, float v);
LLVMValueRef cg_vf(snc_cg *cg, float v); /* splat */
LLVMValueRef cg_splat(snc_cg *cg, LLVMValueRef scalar);

/* kernels: begin a new kernel function `void k(ptr arena, ptr args, i32 tid, i32 nt, ptr slots)`
   (returns it) and end it with `ret void` */
LLVMValueRef cg_kernel_begin(snc_cg *cg, const char *name);
void cg_kernel_end(snc_cg *cg);

/* loops: for (iv = lo; iv < hi; iv += step) { ... } ; lo/hi are i64 values */
void cg_loop_begin(snc_cg *cg, snc_cg_loop *l, LLVMValueRef lo, LLVMValueRef hi, int64_t step, const char *name);
void cg_loop_end(snc_cg *cg, snc_cg_loop *l);
/* every thread of the team waits for the others (GOMP_barrier): a kernel in phases, every thread
   reaching each barrier (never inside a condition that differs between threads) */
void cg_barrier(snc_cg *cg);
/* this thread's share [lo, hi) of n work items */
void cg_partition(snc_cg *cg, int64_t n, LLVMValueRef *lo, LLVMValueRef *hi);
void cg_partition_v(snc_cg *cg, LLVMValueRef n, LLVMValueRef *lo, LLVMValueRef *hi); /* n known at run time */
LLVMValueRef cg_tail_mask(snc_cg *cg, LLVMValueRef e0, LLVMValueRef e); /* lanes e0 + l < e (e < 2^31) */
/* if (cond) { ... } */
LLVMBasicBlockRef cg_if_begin(snc_cg *cg, LLVMValueRef cond, const char *name);
void cg_if_end(snc_cg *cg, LLVMBasicBlockRef after);

/* memory: node buffers live in the arena at the layout's offsets */
LLVMValueRef cg_node_ptr(snc_cg *cg, int node);                      /* float* (or i32*) base */
/* a per-call i64 that is a value of a node, which cg_reuse.c can map to a twin kernel's node */
enum { CG_DATA_STREAM = 1, CG_DATA_NUMEL, CG_DATA_PER_SAMPLE, CG_DATA_DIM1, CG_DATA_INNER, CG_DATA_SCRATCH };
/* stream, numel, per sample, dim 1, per sample / dim 1, the arena offset of its kernel's scratch */
int64_t cg_data_value(const snc_cg *cg, int node, int kind);
LLVMValueRef cg_data_of(snc_cg *cg, int node, int kind);
LLVMValueRef cg_data_fresh_of(snc_cg *cg, int node, int kind); /* in a slot of its own */
LLVMValueRef cg_data(snc_cg *cg, int64_t value);                      /* a per-call i64 (e.g. an RNG stream) */
/* a per-call i64 in a slot of its own: for sizes of kernels shared across shapes, whose slot layout
   must not depend on two sizes happening to be equal */
LLVMValueRef cg_data_fresh(snc_cg *cg, int64_t value);
LLVMValueRef cg_gep(snc_cg *cg, LLVMValueRef base, LLVMValueRef idx); /* &base[idx], float elements */
LLVMValueRef cg_gep_i32(snc_cg *cg, LLVMValueRef base, LLVMValueRef idx);
/* an alloca in the function's entry block (so SROA keeps it in registers) */
LLVMValueRef cg_alloca(snc_cg *cg, LLVMTypeRef t, const char *name);
LLVMValueRef cg_load(snc_cg *cg, LLVMValueRef p);
void cg_store(snc_cg *cg, LLVMValueRef v, LLVMValueRef p);
LLVMValueRef cg_vload(snc_cg *cg, LLVMValueRef p, unsigned align);
void cg_vstore(snc_cg *cg, LLVMValueRef v, LLVMValueRef p, unsigned align);
LLVMValueRef cg_arg(snc_cg *cg, int field); /* a field of snc_step_args, see SNC_ARG_* (loaded at the kernel's entry) */
/* code at the end of the kernel's entry block (before its branch), for values a loop would otherwise
   recompute: the loads could alias the kernel's stores, so LLVM cannot hoist them itself */
LLVMBasicBlockRef cg_entry_begin(snc_cg *cg);
void cg_entry_end(snc_cg *cg, LLVMBasicBlockRef back);
enum { SNC_ARG_INPUTS, SNC_ARG_OUTPUTS, SNC_ARG_NB, SNC_ARG_SEED, SNC_ARG_STEP, SNC_ARG_LR_SCALE, SNC_ARG_NTHREADS, SNC_ARG_ROW0 };

/* arithmetic */
LLVMValueRef cg_add(snc_cg *cg, LLVMValueRef a, LLVMValueRef b); /* i64 */
LLVMValueRef cg_mul(snc_cg *cg, LLVMValueRef a, LLVMValueRef b); /* i64 */
LLVMValueRef cg_fma(snc_cg *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c); /* a*b+c, float or vector */
LLVMValueRef cg_call_intrinsic(snc_cg *cg, const char *name, LLVMTypeRef overload, LLVMValueRef *args, int n);
LLVMValueRef cg_fmax(snc_cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_hsum(snc_cg *cg, LLVMValueRef v); /* ordered horizontal sum of a vector */
void cg_hsum_many(snc_cg *cg, const LLVMValueRef *v, int n, LLVMValueRef *out); /* cg_hsum of each */

/* schedules (cg_sched.c): c[0..n) gets s unless it is there already (returns the new n, at most max);
   cg_sched_choose asks the options' chooser among cands[0..n) (cands[0] the default), records the
   choice and the shape key in cg->sched / cg->sched_shape, and returns it */
int cg_sched_add(snc_cg_schedule *c, int n, int max, snc_cg_schedule s);
snc_cg_schedule cg_sched_choose(snc_cg *cg, const char *shape, const snc_cg_schedule *cands, int n);
/* the shape key of a kernel: its head's op and fused chain ("conv2d+dropout+tanh"), dims, batch */
void cg_sched_shape(snc_cg *cg, const snc_node *head, const char *dims, char *buf, size_t n);

/* epilogues (emit_elem.c): the node a head's kernel stores (the chain's root, or the head itself),
   and the chain applied to the head's value v at feature f, lanes b0.. (loads other inputs there) */
int cg_out_node(snc_cg *cg, int head);
/* input `node` of an elementwise op at feature f, lanes b0..: a vector load, or a node without a
   batch (broadcast, mul's mask operand) loaded at f and splat */
LLVMValueRef cg_operand(snc_cg *cg, int node, LLVMValueRef f, LLVMValueRef b0);
/* compact side outputs (snc_fuse_compact): is node's buffer one? Its argmax bytes at the pooled
   index at (lanes included), and in *pooled the pooling's output there (the activation at the
   argmax); the byte vector idx stored at at */
int cg_compact(const snc_cg *cg, int node);
LLVMValueRef cg_compact_load(snc_cg *cg, int node, LLVMValueRef at, LLVMValueRef *pooled);
void cg_compact_store(snc_cg *cg, LLVMValueRef base, LLVMValueRef at, LLVMValueRef idx);
LLVMValueRef cg_epilogue(snc_cg *cg, int head, LLVMValueRef v, LLVMValueRef f, LLVMValueRef b0);
/* the chain from its k0-th member on, head the node whose value v is (a prologue's later members) */
LLVMValueRef cg_epilogue_from(snc_cg *cg, int k0, int head, LLVMValueRef v, LLVMValueRef f, LLVMValueRef b0);
/* the same for n values at once, node by node (independent chains side by side, for the scheduler) */
void cg_epilogue_n(snc_cg *cg, int head, LLVMValueRef *v, const LLVMValueRef *f, const LLVMValueRef *b0, int n);
void cg_epilogue_n_from(snc_cg *cg, int k0, int head, LLVMValueRef *v, const LLVMValueRef *f, const LLVMValueRef *b0, int n);

/* vector math (cg_math.c): polynomial approximations, |error| about 1e-7 relative */
LLVMValueRef cg_vexp(snc_cg *cg, LLVMValueRef x);
LLVMValueRef cg_vlog(snc_cg *cg, LLVMValueRef x);
LLVMValueRef cg_vtanh(snc_cg *cg, LLVMValueRef x);
LLVMValueRef cg_vsigmoid(snc_cg *cg, LLVMValueRef x);
LLVMValueRef cg_vexpm1(snc_cg *cg, LLVMValueRef x);
/* dropout's keep mask of 16 consecutive-batch elements, index i = (b0 + lane) * F + f: bit for bit
   snc_dropout_uniform(...) >= p, without converting the uniform to float */
LLVMValueRef cg_vdropout_keep(snc_cg *cg, LLVMValueRef seed, LLVMValueRef step, LLVMValueRef stream, LLVMValueRef base_i,
                              int64_t lane_stride, float p);

#endif
