/* The fusion pass: chains of elementwise work fuse into the loops of the op that produces their
 * input. A node p is absorbed into its consumer e when
 *   - e is elementwise: its row's emitter is the elementwise one (compiler/ops/elementwise.c:
 *     activations and their gradients, dropout and its gradient, scale, square, add, mul),
 *   - p is elementwise, a gathered product (conv2d, linear and their input gradients), batch
 *     normalisation (its last pass) or max pooling's gradient with tiling windows, whose kernels
 *     produce each element once, in registers, before storing it,
 *   - e is p's only consumer, both are batched with the same shape, on the same side of the
 *     forward/backward boundary, and p is not an output, an output's labels or the loss.
 * The kernel of the chain runs where its last node (the root) stood, computes every member in
 * registers and stores only the root: the absorbed nodes get no buffer. Examples: conv2d, dropout,
 * tanh as one kernel; linear_dx, tanh_dx; maxpool2d_dx, tanh_dx, dropout_dx; batchnorm, relu.
 * A tiling max pooling also takes the forward convolution chain before it (pool_takes): conv2d,
 * dropout, tanh, maxpool2d as one kernel that stores the pooled tensor; in a training graph, whose
 * backward pass reads the activation the pooling reads, the kernel stores that activation too, as
 * a side output before its root: into[tanh] = -2 - maxpool2d (codegen.h); compact, one argmax byte
 * per window and lane, when the backward pass needs it only at the argmax (snc_fuse_compact).
 * A convolution's weight gradient takes its output gradient's chain when that chain starts at a
 * tiling max pooling's gradient and its only other reader is the bias gradient (dw_takes: a first
 * layer, whose input gradient nobody needs): maxpool2d_dx, tanh_dx, dropout_dx, conv2d_dw and
 * bias_grad as one kernel that stores dw and db, never the output gradient. The bias gradient is
 * then a side output: into[db] = dw, a root that comes before it. So is batch normalisation's
 * gamma gradient, sum(dy xhat), which the input gradient's kernel computes on the way. */
#include <string.h>

#include "ops/op.h"
#include "snc/codegen.h"

/* from the op's row, so a new elementwise op fuses without an edit here */
static int elementwise(snc_opcode op) { return snc_op(op)->emit == snc_cg_emit_elementwise; }

/* max pooling's gradient with windows that tile the input (kernel = stride, no padding, exact fit):
 * its kernel stores every element of the input gradient exactly once, in registers first */
static int maxpool_dx_tiled(const snc_graph *g, const snc_node *n) {
  if (n->op != SNC_OP_MAXPOOL2D_DX) return 0;
  const snc_node *dy = g->nodes[n->inputs[1]];
  const snc_attrs *a = &n->attr;
  return n->shape.rank == 4 && a->kernel[0] == a->stride[0] && a->kernel[1] == a->stride[1] && !a->pad[0] && !a->pad[1] &&
         dy->shape.dim[2] * a->kernel[0] == n->shape.dim[2] && dy->shape.dim[3] * a->kernel[1] == n->shape.dim[3];
}

static int head_capable(const snc_graph *g, const snc_node *n) {
  snc_opcode op = n->op;
  return elementwise(op) || op == SNC_OP_CONV2D || op == SNC_OP_LINEAR || op == SNC_OP_CONV2D_DX || op == SNC_OP_LINEAR_DX ||
         op == SNC_OP_BATCHNORM || maxpool_dx_tiled(g, n);
}

int snc_fuse_elementwise(snc_opcode op) { return elementwise(op); }

/* max pooling with windows that tile its input (kernel = stride, no padding, exact fit) */
static int maxpool_tiled(const snc_graph *g, const snc_node *n) {
  if (n->op != SNC_OP_MAXPOOL2D || n->shape.rank != 4) return 0;
  const snc_node *x = g->nodes[n->inputs[0]];
  const snc_attrs *a = &n->attr;
  return a->kernel[0] == a->stride[0] && a->kernel[1] == a->stride[1] && !a->pad[0] && !a->pad[1] &&
         n->shape.dim[2] * a->kernel[0] == x->shape.dim[2] && n->shape.dim[3] * a->kernel[1] == x->shape.dim[3];
}

/* may max pooling e take p's group (p its root)? The group must be a forward convolution the tile
   emitter runs, plus elementwise nodes; its kernel then stores each window's maximum and, when p
   has readers in the backward pass, p itself (codegen/emit_conv.c, "pooled") */
static int pool_takes(const snc_graph *g, const int *into, const snc_node *e, int p) {
  if (!maxpool_tiled(g, e)) return 0;
  int head = p;
  for (int m = 0; m < p && head == p; m++)
    if (into[m] == p) head = m;
  const snc_node *h = g->nodes[head];
  return h->op == SNC_OP_CONV2D && snc_cg_conv_tiles(g, h);
}

/* may the weight gradient e take p's group (p its dy, the root of a chain headed by a tiling max
   pooling's gradient) and the bias gradient q, p's other reader (-1: none)? The dw emitter
   computes dy in registers (codegen/emit_dw.c, "prologue"); its blocks hold every input
   channel's taps */
static int dw_takes(const snc_graph *g, const int *into, const snc_node *e, int p, int q) {
  if (e->op != SNC_OP_CONV2D_DW || e->inputs[1] != p) return 0;
  const snc_node *x = g->nodes[e->inputs[0]], *pn = g->nodes[p];
  if (q >= 0 && (q <= e->id || g->nodes[q]->op != SNC_OP_BIAS_GRAD || g->nodes[q]->ninputs != 1)) return 0;
  if (!(pn->flags & SNC_NF_BATCHED) || pn->dtype != SNC_F32 || pn->shape.rank != 4 || p < g->nforward) return 0;
  if (x->shape.rank != 4) return 0;
  int head = p;
  for (int m = 0; m < p && head == p; m++)
    if (into[m] == p) head = m;
  return maxpool_dx_tiled(g, g->nodes[head]) && snc_cg_dw_prologue_fits(g, e, g->nodes[head]);
}

/* A backward op in a chain that reads the pooled activation a (compact side outputs below): the
   chain's value is zero at every element but each window's argmax, and these ops keep a zero dy
   zero (+0) whatever finite activation they read, which may therefore be the window's maximum */
static int zero_keeping(const snc_node *m, int a) {
  switch (m->op) {
  case SNC_OP_DROPOUT_DX: case SNC_OP_SCALE: return m->inputs[0] != a; /* read nothing but dy */
  case SNC_OP_TANH_DX: case SNC_OP_SIGMOID_DX: case SNC_OP_RELU_DX: return m->inputs[1] != a; /* (y, dy) */
  default: return 0;
  }
}

int snc_fuse_compact(const snc_graph *g, const int *into, int a) {
  if (!into || into[a] > -2) return 0;
  const snc_node *pool = g->nodes[-2 - into[a]];
  if (pool->op != SNC_OP_MAXPOOL2D || pool->inputs[0] != a) return 0;
  for (int j = a + 1; j < g->nnodes; j++) {
    const snc_node *r = g->nodes[j];
    int reads = 0;
    for (int k = 0; k < r->ninputs; k++) reads |= r->inputs[k] == a;
    if (!reads || j == pool->id) continue;
    if (j < g->nforward) return 0;
    int root = snc_fuse_root(into, j), head = root;
    for (int m = 0; m < root && head == root; m++)
      if (into[m] == root) head = m;
    if (g->nodes[root]->op == SNC_OP_CONV2D_DW && head == root) return 0; /* a dw kernel of its own: no chain */
    const snc_node *h = g->nodes[head];
    /* the chain starts at the gradient of this pooling (same windows) reading a as its x */
    if (h->op != SNC_OP_MAXPOOL2D_DX || h->inputs[0] != a || !maxpool_dx_tiled(g, h) ||
        memcmp(h->attr.kernel, pool->attr.kernel, sizeof pool->attr.kernel) || g->nodes[h->inputs[1]]->shape.rank != 4)
      return 0;
    /* every other member keeps zeros zero; a weight gradient at the root reads the chain's value */
    for (int m = head + 1; m <= root; m++) {
      if (snc_fuse_root(into, m) != root) continue;
      const snc_node *e = g->nodes[m];
      if (m == root && e->op == SNC_OP_CONV2D_DW ? e->inputs[0] == a : !zero_keeping(e, a)) return 0;
    }
  }
  return 1;
}

int snc_fuse_plan(const snc_graph *g, int *into, snc_error *err) {
  int n = g->nnodes;
  int *users = calloc((size_t)n, sizeof *users);
  unsigned char *pinned = calloc((size_t)n, 1);
  if (!users || !pinned) {
    free(users);
    free(pinned);
    return snc_errorf(err, "%s: out of memory in fusion", g->file);
  }
  for (int i = 0; i < n; i++) {
    into[i] = i;
    const snc_node *nd = g->nodes[i];
    for (int k = 0; k < nd->ninputs; k++) {
      int dup = 0;
      for (int q = 0; q < k; q++) dup |= nd->inputs[q] == nd->inputs[k];
      if (!dup) users[nd->inputs[k]]++;
    }
  }
  for (int o = 0; o < g->noutputs; o++) pinned[g->outputs[o].node] = pinned[g->outputs[o].target] = 1;
  if (g->loss >= 0) pinned[g->loss] = 1;
  for (int i = 0; i < n; i++) {
    const snc_node *e = g->nodes[i];
    if (e->op == SNC_OP_CONV2D_DW) { /* a first layer's weight gradient, with its dy chain and db */
      int p = e->inputs[1], q = -1, others = 0;
      for (int j = 0; j < n; j++)
        for (int k = 0; k < g->nodes[j]->ninputs; k++)
          if (j != i && g->nodes[j]->inputs[k] == p) q = j, others++, k = g->nodes[j]->ninputs;
      if (others <= 1 && !pinned[p] && (q < 0 || !pinned[q]) && dw_takes(g, into, e, p, q)) {
        for (int m = 0; m < i; m++)
          if (into[m] == p) into[m] = i;
        if (q >= 0) into[q] = i;
      }
      continue;
    }
    if (e->op == SNC_OP_BATCHNORM_DGAMMA) { /* sum(dy xhat): the input gradient's kernel sums it too */
      for (int d = 0; d < i; d++) {
        const snc_node *dx = g->nodes[d];
        if (dx->op == SNC_OP_BATCHNORM_DX && into[d] == d && dx->inputs[0] == e->inputs[0] && dx->inputs[2] == e->inputs[1] &&
            dx->attr.eps == e->attr.eps && !pinned[i]) {
          into[i] = d;
          break;
        }
      }
      continue;
    }
    if (!(e->flags & SNC_NF_BATCHED)) continue;
    if (e->op == SNC_OP_MAXPOOL2D) { /* a pooling after a convolution chain */
      int p = e->inputs[0], later = 1; /* p's other readers are all in the backward pass */
      for (int j = p + 1; j < g->nforward && later; j++)
        for (int k = 0; k < g->nodes[j]->ninputs; k++) later &= j == i || g->nodes[j]->inputs[k] != p;
      if (later && i < g->nforward && into[p] == p && !pinned[p] && g->nodes[p]->dtype == SNC_F32 && pool_takes(g, into, e, p)) {
        for (int m = 0; m < p; m++)
          if (into[m] == p) into[m] = i;
        into[p] = users[p] == 1 ? i : -2 - i; /* absorbed, or stored by the kernel for the backward */
      }
      continue;
    }
    if (!elementwise(e->op)) continue;
    for (int k = 0; k < e->ninputs; k++) {
      int p = e->inputs[k];
      const snc_node *pn = g->nodes[p];
      if (!head_capable(g, pn) || users[p] != 1 || pinned[p] || !(pn->flags & SNC_NF_BATCHED)) continue;
      if (!snc_shape_eq(&pn->shape, &e->shape) || (p < g->nforward) != (i < g->nforward)) continue;
      if (pn->dtype != SNC_F32) continue;
      /* absorb p's whole group into e's */
      for (int m = 0; m < i; m++)
        if (into[m] == p) into[m] = i;
      break; /* one chain per node: the others stay separate kernels */
    }
  }
  free(users);
  free(pinned);
  return 0;
}
