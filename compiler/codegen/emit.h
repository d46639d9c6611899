/* Kernel emitters (compiler/codegen/emit_*.c), called by the module builder. */
#ifndef SNC_CODEGEN_EMIT_H
#define SNC_CODEGEN_EMIT_H
#include "codegen/cg.h"

void snc_cg_emit_begin(snc_cg *cg, const snc_program *p);
/* inputs (batch-major, from snc_step_args) into the arena's layout; NULL when there are none */
LLVMValueRef snc_cg_emit_inputs(snc_cg *cg);
/* outputs and the loss from the arena into snc_step_args.outputs (eval) */
LLVMValueRef snc_cg_emit_outputs(snc_cg *cg, const snc_program *p);
/* the kernels of one node into ks[] (at most 4); returns how many, -1 if the op has no emitter */
int snc_cg_emit_node(snc_cg *cg, const snc_node *n, LLVMValueRef *ks);
void snc_cg_dump_plan(const snc_program *p, FILE *out);

/* per-family emitters */
int snc_cg_emit_elementwise(snc_cg *cg, const snc_node *n, LLVMValueRef *ks);
int snc_cg_emit_reduce(snc_cg *cg, const snc_node *n, LLVMValueRef *ks);
int snc_cg_emit_update(snc_cg *cg, const snc_node *n, LLVMValueRef *ks);
int snc_cg_emit_conv(snc_cg *cg, const snc_node *n, LLVMValueRef *ks);
int snc_cg_emit_pool(snc_cg *cg, const snc_node *n, LLVMValueRef *ks);
int snc_cg_emit_softmax(snc_cg *cg, const snc_node *n, LLVMValueRef *ks);
int snc_cg_emit_loss(snc_cg *cg, const snc_node *n, LLVMValueRef *ks);
int snc_cg_emit_norm(snc_cg *cg, const snc_node *n, LLVMValueRef *ks);
int snc_cg_emit_shape(snc_cg *cg, const snc_node *n, LLVMValueRef *ks);
int snc_cg_emit_product(snc_cg *cg, const snc_node *n, LLVMValueRef *ks);

/* convolutions and matrix products (emit_conv.c, emit_dw.c): the dimensions of a forward, dx or
   dw node, and the weight-gradient emitter */
typedef struct conv_dims {
  int64_t C, H, W;    /* input x: channels, height, width */
  int64_t O, OH, OW;  /* output */
  int kh, kw, s[2], p[2];
} conv_dims;
conv_dims cg_conv_dims(const snc_graph *g, const snc_node *n);
void cg_emit_dw(snc_cg *cg, const snc_node *n);
/* the scratch bytes the kernel of node (a chain's root) needs, which the memory plan places: a
   convolution, input gradient (emit_conv.c) or weight gradient (emit_dw.c) that runs as Winograd;
   0 for every other node */
int64_t cg_node_scratch(const snc_graph *g, const int *into, int node, int direct_conv);
int64_t cg_dw_scratch(const snc_graph *g, const int *into, int node, int direct_conv);

/* forward 3x3 convolutions as Winograd F(4x4, 3x3) (emit_wino.c): the kernel's geometry, its
   buffers and its fused chain (the epilogue in cg->epi, a max pooling ending it) */
typedef struct cg_wino {
  conv_dims d;
  int64_t bp;
  int head;                 /* the convolution's node */
  int root;                 /* the kernel's node (its chain's root), whose scratch holds U */
  LLVMValueRef x, w, bias, out; /* out: the chain's root, or the pooled tensor */
  const snc_node *pool;     /* the max pooling that ends the chain, or NULL */
  LLVMValueRef keep;        /* pooled in a training graph: the side output (the activation, or compact) */
  int compact, pre;         /* as the direct kernel's (emit_conv.c) */
  const char *shape;        /* the schedule's shape key (cg_sched_shape) */
  int dx;                   /* an input gradient: d is the convolution that computes it (from dy, C
                               its output channels, the weights w[c][o] turned by 180 degrees) */
} cg_wino;
/* Does a convolution of these dims (ending in pool, may be NULL) run as Winograd? 3x3, stride 1,
   padding 0 or 1, 16k channels in and 8k out, its 4x4 tiles (cropped at the edges) at most half the
   direct kernel's multiplies, whole tiles whose windows the pooling tiles when it pools, its scratch
   within the thread's stack budget. */
int cg_wino_ok(const conv_dims *d, const snc_node *pool);
int cg_wino_shape_ok(const conv_dims *d); /* the rules above but the pooling's and the stack's */
int64_t cg_wino_scratch(const conv_dims *d); /* its transformed weights U, in the node's scratch */
void cg_wino_emit(snc_cg *cg, const cg_wino *W);
/* the transforms' matrices (B^T, G, A^T) and their parts, shared with emit_wino_dw.c:
   cg_wino_lincomb = sum_k c[k] v[k] over the nonzero c[k] in k order; cg_wino_sandwich: out = L in L^T
   for an m x n L (row-major) and an n x n in (m, n <= 6) */
extern const float cg_wino_BT[6][6], cg_wino_G[6][3], cg_wino_AT[4][6];
LLVMValueRef cg_wino_lincomb(snc_cg *cg, const float *c, const LLVMValueRef *v, int n);
void cg_wino_sandwich(snc_cg *cg, const float *L, int m, int n, const LLVMValueRef *in, LLVMValueRef *out);
/* weight gradients of 3x3 convolutions as Winograd F(3x3, 4x4) in phases over arena scratch
   (emit_wino_dw.c): the scratch bytes its node needs (0: the direct kernel), and the kernel */
int64_t cg_wino_dw_scratch(const conv_dims *d, int64_t bp);
void cg_wino_dw_emit(snc_cg *cg, const snc_node *n);

/* helpers */
int64_t cg_per_sample(const snc_graph *g, int node); /* numel per sample (numel when not batched) */
LLVMValueRef cg_nb(snc_cg *cg);                      /* i64 rows in use */
/* lanes b0..b0+15 < nb as an i1 vector */
LLVMValueRef cg_lane_mask(snc_cg *cg, LLVMValueRef b0);

#endif
