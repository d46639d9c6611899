/* The layer graph: nodes in topological order, each one primitive op from the op table.
 *
 *   snc_graph *g = snc_graph_new("siamese", "models/siamese.yaml");
 *   int x = snc_graph_input(g, "pair", SNC_F32, shape_of_pair, loc);
 *   ...                                    // the front end builds everything else
 *   if (snc_graph_verify(g, &err) != 0) ...
 *   snc_graph_print_summary(g, stdout);
 *   snc_graph_free(g);                     // frees every node, name and string of the graph
 *
 * Parameters are nodes too (op PARAM), so weight sharing is one parameter node with two users.
 * Every tensor that carries a batch has it as dim[0] (flag SNC_NF_BATCHED) with the graph's batch
 * size; parameters, constants and losses have no batch dimension. Node ids index g->nodes and
 * every input id is smaller than its user's id: the node list is a topological order. */
#ifndef SNC_IR_H
#define SNC_IR_H
#include <stdint.h>
#include <stdio.h>

#include "snc/arena.h"
#include "snc/error.h"

#define SNC_MAX_DIMS 6

typedef enum { SNC_F32, SNC_I32 } snc_dtype;

typedef struct snc_shape {
  int rank;
  int64_t dim[SNC_MAX_DIMS];
} snc_shape;

typedef enum {
#define X(e, name, fam) SNC_OP_##e,
#include "snc/ops.def"
#undef X
  SNC_OP_COUNT
} snc_opcode;

/* Where a node came from in the model file, for messages. */
typedef struct snc_loc {
  const char *file;
  int line, col; /* 1-based; 0 when unknown */
} snc_loc;

/* Op attributes; each op reads the fields its row documents. */
typedef struct snc_attrs {
  int kernel[2], stride[2], pad[2]; /* conv2d, pools: [h, w] */
  int axis;                         /* concat, slice, softmax, log_softmax (non-negative, resolved) */
  int start, len;                   /* slice along axis; reduce_sum: axes [axis, axis+len) */
  int classes;                      /* one_hot */
  float alpha;                      /* leaky_relu slope, elu alpha, scale factor */
  float p;                          /* dropout probability of zeroing */
  float eps, momentum;              /* batchnorm */
  snc_shape to;                     /* reshape: per-sample target shape, one dim may be -1;
                                       backward ops: the (full) shape of the input they differentiate */
  int to_batched;                   /* backward ops: whether that input is batched */
  int stream;                       /* dropout: RNG stream (the forward node's id, shared by its backward) */
  float lr, beta1, beta2, weight_decay; /* optimizer updates; eps and momentum above are shared */
  int nesterov;
} snc_attrs;

/* Parameter initialisation, resolved by the front end (PyTorch's defaults become UNIFORM). */
typedef enum { SNC_INIT_ZEROS, SNC_INIT_CONSTANT, SNC_INIT_UNIFORM, SNC_INIT_NORMAL } snc_init_kind;
typedef struct snc_init {
  snc_init_kind kind;
  float a, b; /* CONSTANT: a; UNIFORM: [a, b); NORMAL: mean a, std b */
} snc_init;

enum {
  SNC_NF_BATCHED = 1u << 0,   /* dim[0] is the batch */
  SNC_NF_TRAINABLE = 1u << 1, /* PARAM updated by the optimizer (otherwise state, e.g. running mean) */
  SNC_NF_LOSS = 1u << 2,      /* a loss term (scalar) */
  SNC_NF_EFFECT = 1u << 3,    /* writes into its inputs (optimizer updates, batchnorm running stats) */
};

typedef struct snc_node {
  int id;
  snc_opcode op;
  snc_dtype dtype;
  snc_shape shape;
  int ninputs;
  int *inputs; /* node ids, all < id */
  snc_attrs attr;
  const char *name; /* unique in the graph: "digit_a.conv1", "digit_a.conv1.weight" */
  snc_loc loc;
  unsigned flags;
  snc_init init;      /* PARAM */
  const char *source; /* INPUT: the data stream it binds to */
  float weight;       /* loss terms: weight in the total loss */
  float *value;       /* CONST: numel(shape) values, in the graph's arena */
  int grad;           /* after autodiff, trainable PARAM: the node holding its gradient (else -1) */
} snc_node;

/* A metric: accuracy of `node` against the integer labels in `target`. Argmax over the last
 * dimension when it has two or more entries, otherwise a 0.5 threshold on a probability. */
typedef struct snc_output {
  const char *name;
  int node, target;
} snc_output;

typedef enum { SNC_OPT_ADAM, SNC_OPT_SGD } snc_optim_kind;
typedef enum { SNC_SCHED_CONSTANT, SNC_SCHED_ONECYCLE } snc_sched_kind;
typedef struct snc_train_cfg {
  snc_optim_kind optimizer;
  float lr, beta1, beta2, eps, weight_decay, momentum;
  int nesterov;
  int epochs, batch_size;
  uint64_t seed;
  /* learning-rate schedule (runtime: ctx.lr_scale per step); onecycle: lr is the peak */
  snc_sched_kind schedule;
  float pct_start, div_factor, final_div_factor; /* onecycle, PyTorch's OneCycleLR defaults 0.3, 25, 1e4 */
  int anneal_linear;                              /* onecycle: linear instead of cosine annealing */
  int augment_shift; /* training images shifted by a random offset in [-s, s] per axis (0: off) */
  float augment_rotate, augment_scale; /* and rotated by up to +-rotate degrees, scaled by 1 +- scale (0: off) */
  float augment_elastic;               /* and warped by a smooth random field of up to +-elastic pixels (0: off) */
  int augment_grid;                    /* control points per side of that field (default 3) */
} snc_train_cfg;

typedef struct snc_data_cfg {
  const char *generator; /* "mnist_pairs", "mnist_digits" */
  int train_size, test_size;
  const char *dataset; /* NULL: the bundled set; otherwise a directory of IDX files */
  int standardize;
} snc_data_cfg;

typedef struct snc_switch {
  const char *name;
  int is_bool;
  double value;
  int overridden; /* set with --set */
} snc_switch;

typedef struct snc_graph {
  snc_arena arena; /* owns nodes, names, strings */
  const char *name, *file;
  snc_node **nodes;
  int nnodes, cap;
  int batch;
  int loss; /* total loss node id, -1 when the model has no loss */
  snc_output *outputs;
  int noutputs;
  snc_switch *switches;
  int nswitches;
  snc_train_cfg train;
  snc_data_cfg data;
  int nforward; /* nodes [0, nforward) are the forward graph; autodiff appends backward and updates */
  int64_t forward_bytes; /* the forward nodes' tensors, summed as the front end adds them (memory limit) */
  struct snc_strmap *names; /* node name -> id (compiler/ir/strmap.h); owned, freed with the graph */
} snc_graph;

/* --- building --- */
snc_graph *snc_graph_new(const char *name, const char *file);
void snc_graph_free(snc_graph *g);

/* Adds a node of op `op` with the given inputs and attributes, runs its shape rule and returns
 * the new id; on a shape error returns -1 with err set to "file:line:col: op 'name': ...". */
int snc_graph_add(snc_graph *g, snc_opcode op, const char *name, const int *inputs, int ninputs,
                  const snc_attrs *attr, snc_loc loc, snc_error *err);
int snc_graph_input(snc_graph *g, const char *name, snc_dtype dt, const snc_shape *sample_shape,
                    snc_loc loc, snc_error *err);
/* Returns the parameter called `name`, creating it with `shape` and `init` if absent. Asking for an
 * existing name with another shape is an error (two layers that share must agree). */
int snc_graph_param(snc_graph *g, const char *name, const snc_shape *shape, snc_init init, unsigned flags,
                    snc_loc loc, snc_error *err);
int snc_graph_find(const snc_graph *g, const char *name); /* node id or -1 */
/* A constant tensor (not batched) holding `values` (copied into the arena). */
int snc_graph_const(snc_graph *g, const char *name, const snc_shape *shape, const float *values, snc_loc loc,
                    snc_error *err);

static inline snc_node *snc_node_at(const snc_graph *g, int id) { return g->nodes[id]; }
static inline snc_node *snc_node_in(const snc_graph *g, const snc_node *n, int k) {
  return g->nodes[n->inputs[k]];
}

/* --- checks and reports --- */
int snc_graph_verify(const snc_graph *g, snc_error *err);
/* The first optimizer update (adam, sgd) autodiff appended: every node from there on is an update or
 * its state; g->nnodes when there is none. */
int snc_graph_first_update(const snc_graph *g);
int64_t snc_shape_numel(const snc_shape *s);
int snc_shape_eq(const snc_shape *a, const snc_shape *b);
/* "[B,32,12,12]" (batch written as B when batched) into buf; returns buf. */
char *snc_shape_str(const snc_shape *s, int batched, char *buf, size_t len);
int64_t snc_node_flops(const snc_graph *g, const snc_node *n); /* per batch */
int64_t snc_graph_param_count(const snc_graph *g);             /* trainable scalars */
/* The memory a model may ask for, in bytes: $SNC_MEM_LIMIT (a number with an optional K, M, G or T
 * suffix, powers of 1024) when set, else the machine's physical memory. While the front end builds a
 * graph (nforward still 0), adding a node whose tensor brings forward_bytes past it is refused. */
int64_t snc_mem_limit(void);
void snc_graph_print_summary(const snc_graph *g, FILE *out);
/* "weight_sharing=true,aux_loss=false,lr=0.002": every switch in declaration order, numbers at full
 * precision (checkpoint metadata and generated headers use it). */
void snc_graph_switches_str(const snc_graph *g, char *buf, size_t len);

/* Formats "file:line:col: op 'name': <fmt>" into err and returns -1. */
int snc_node_errorf(const snc_graph *g, const snc_node *n, snc_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

const char *snc_op_name(snc_opcode op);
int snc_op_lookup(const char *name); /* opcode or -1 */

#endif
