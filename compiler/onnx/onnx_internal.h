/* Shared by the ONNX importer's files (compiler/onnx/): the decoded model, the table of tensors by
 * name, a growing text buffer, and the error helpers that name the file and the node. */
#ifndef SNC_ONNX_INTERNAL_H
#define SNC_ONNX_INTERNAL_H
#include <stddef.h>
#include <stdint.h>

#include "onnx.pb-c.h"
#include "snc/onnx.h"

#define ONX_MAX_RANK SNC_MAX_DIMS
#define ONX_BATCH INT64_MIN /* a shape value that stands for the (implicit) batch */
#define ONX_MAX_ELEMS (INT64_C(1) << 31)

enum { ONX_FLOAT = 1, ONX_INT32 = 6, ONX_INT64 = 7, ONX_DOUBLE = 11 }; /* TensorProto.DataType */

/* A growing NUL-terminated string; allocation failure sets oom and keeps what fits. */
typedef struct onx_buf {
  char *s;
  size_t len, cap;
  int oom;
} onx_buf;
void onx_puts(onx_buf *b, const char *s);
void onx_printf(onx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void onx_put_float(onx_buf *b, float v); /* shortest text that reads back as v */

typedef enum { ONX_ACT, ONX_CONST, ONX_PAD } onx_kind;

/* One named tensor: an activation (a layer or input of the text), a constant (initializer, Constant
 * output or a value computed from shapes), or a zero Pad waiting for the Conv that absorbs it. */
typedef struct onx_tensor {
  const char *name; /* the ONNX name (borrowed from the model) */
  onx_kind kind;
  int rank;
  int64_t dim[ONX_MAX_RANK]; /* ACT: dim[0] is the batch (ONX_BATCH) */
  /* ACT */
  const char *layer;         /* the snc layer or input that holds it (owned by the importer) */
  int i32;                   /* an int32 input */
  /* CONST: n elements, as floats (f) and as integers (i, ONX_BATCH allowed) */
  int64_t n;
  float *f;
  int64_t *i;
  int integer;               /* the ONNX type was an integer type */
  int init;                  /* an initializer (its bytes become a weight when a layer takes it) */
  /* PAD: the activation padded and the pads of H and W (top, left, bottom, right) */
  int src;
  int64_t pads[4];
} onx_tensor;

typedef struct onx_weight {
  char *name;
  int ndim;
  int64_t dims[ONX_MAX_RANK];
  float *data;
} onx_weight;

typedef struct onx_imp {
  const char *file;
  snc_error *err;
  Onnx__ModelProto *model;
  Onnx__GraphProto *graph;
  int opset;
  int64_t fixed_batch; /* dim 0 of the inputs when it is a number, else -1 */
  onx_tensor *t;
  int nt, capt;
  int *hash; /* open addressing over t by name: index + 1, 0 empty */
  int hcap;
  char **names; /* every snc name taken (layers, inputs, constants) */
  int nnames, capnames;
  onx_weight *w;
  int nw, capw;
  onx_buf graph_text, const_text;
  int *uses;  /* per node: how many later nodes read its first output (MatMul + Add fusion) */
  int *user;  /* per node: the last node reading its first output, -1 when none */
  int *skip;  /* per node: already translated by an earlier one */
  const Onnx__NodeProto *node; /* the node being translated, for messages */
  int nconst;                  /* constants written to const_text */
} onx_imp;

/* "file: node 'n' (Op): <fmt>" (the node from imp->node) or "file: <fmt>" without a node; returns -1. */
int onx_fail(onx_imp *imp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The tensor table. onx_find returns the index or -1; onx_add appends (a name defined twice is an
 * error) and returns the new index or -1. */
int onx_find(const onx_imp *imp, const char *name);
int onx_add(onx_imp *imp, const onx_tensor *t);
/* The input k of the current node: its index; missing, empty or undefined inputs are errors
 * (onx_input_opt returns -2 for a missing or empty optional input). */
int onx_input(onx_imp *imp, int k);
int onx_input_opt(onx_imp *imp, int k);
/* Decodes an initializer or Constant tensor into t (kind CONST). */
int onx_decode_tensor(onx_imp *imp, const Onnx__TensorProto *tp, const char *name, onx_tensor *t);
/* Attributes of the current node: 1 and the value when present, 0 when absent, -1 on a wrong type. */
const Onnx__AttributeProto *onx_attr(onx_imp *imp, const char *name);
int onx_attr_int(onx_imp *imp, const char *name, int64_t def, int64_t *v);
int onx_attr_float(onx_imp *imp, const char *name, float def, float *v);
int onx_attr_ints(onx_imp *imp, const char *name, int64_t *v, int max, int *n); /* *n 0 when absent */
/* Every attribute of the current node is in the NULL-terminated list `known`. */
int onx_attr_check(onx_imp *imp, const char *const *known);

/* A fresh snc name for a layer from an ONNX name (letters, digits, _; unique); owned by imp. */
const char *onx_layer_name(onx_imp *imp, const char *onnx_name, const char *fallback);
/* Records a weight (data copied) under "<layer>.<suffix>". */
int onx_weight_add(onx_imp *imp, const char *layer, const char *suffix, int ndim, const int64_t *dims,
                   const float *data);

/* Translates the current node (onnx_ops.c). */
int onx_translate(onx_imp *imp, int node_index);

/* Rejects messages nested deeper than `max_depth` before protobuf-c unpacks them recursively. */
int onx_check_depth(const uint8_t *p, size_t len, const ProtobufCMessageDescriptor *d, int max_depth);

/* Shared by the operator files (onnx_ops.c, onnx_shape_ops.c). */
char *onx_shape_str(const onx_tensor *t, char *buf, size_t len); /* "[B,32,12,12]" */
#define ONX_SHAPE(t) onx_shape_str((t), (char[96]){0}, 96)
int onx_act(onx_imp *imp, int k);                 /* input k, a computed float tensor */
int onx_cst(onx_imp *imp, int k, int optional);   /* input k, a constant (-2: absent optional) */
int onx_has_output(onx_imp *imp, int k);
int onx_define(onx_imp *imp, int k, const onx_tensor *t);
int onx_define_act(onx_imp *imp, const char *layer, int rank, const int64_t *dim);
/* Output 0 as a constant; takes f and i (freed on failure too). */
int onx_define_const(onx_imp *imp, int rank, const int64_t *dim, int64_t n, float *f, int64_t *i, int integer);
const char *onx_layer_for(onx_imp *imp, const char *fallback); /* the node's layer name */
void onx_emit(onx_imp *imp, const char *name, const char *type, const char *const *from, int nfrom);
int64_t onx_numel_from(const onx_tensor *t, int k0);
int onx_shape_op(onx_imp *imp, const char *op, int *handled); /* onnx_shape_ops.c */

#endif
