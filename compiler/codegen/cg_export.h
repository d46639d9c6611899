/* Code generation internals for the parts of a module beyond the kernels: the P_init entry point
 * (cg_init.c) and the metadata that lets `snrun` run a written module (cg_meta.c). */
#ifndef SNC_CODEGEN_CG_EXPORT_H
#define SNC_CODEGEN_CG_EXPORT_H
#include "codegen/cg.h"

/* Adds P_init(ptr arena, i64 seed) to cg's module: parameters from their init specs, constants
 * copied, workspace zeroed; with blob (p->layout.persistent_bytes bytes) a copy of the blob over the
 * persistent region instead. */
int snc_cg_emit_init(snc_cg *cg, snc_program *p, const void *blob, snc_error *err);

/* A hash of the graph's nodes (names, ops, dtypes, shapes, flags, inputs): a module records it so a
 * graph rebuilt from the module's model text can be checked against the one it was compiled from. */
uint64_t snc_cg_graph_fingerprint(const snc_graph *g);

#endif
