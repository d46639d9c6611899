/* `snrun` on modules written by `snc compile --emit=bc` (compile once, run many).
 *
 *   snc_graph *g = NULL;
 *   snc_backend *be = snc_compiled_backend("siamese.bc", 2, &g, &err);  // no YAML file, no codegen
 *   if (!be) { fprintf(stderr, "%s\n", err.msg); return 1; }
 *   ... snc_train(g, be, &opts, &r, &err) / snc_checkpoint_load + snc_evaluate ...
 *   be->free(be);                     // frees the code and the arena
 *   snc_graph_free(g);                // the graph rebuilt from the module's metadata: the caller's
 *
 * Errors name the file. */
#ifndef SNC_COMPILED_H
#define SNC_COMPILED_H
#include "snc/backend.h"

/* Does path start with LLVM bitcode's magic bytes? (0 when it does not or cannot be read) */
int snc_is_bitcode(const char *path);

/* A JIT backend on the module in a bitcode file (snc_program_load_bitcode): *g receives the graph
 * rebuilt from the module's model text, which the caller frees after the backend. threads: OpenMP
 * threads per step (0: the runtime's default). */
snc_backend *snc_compiled_backend(const char *path, int threads, snc_graph **g, snc_error *err);

#endif
