/* The ONNX and .npy verbs of the command-line tools (tools/cli/onnx_cli.c, tools/cli/infer_cli.c):
 * `snc import`, `snc export`, `snrun infer`, and the steps they share: a model's weights from a
 * checkpoint or an import put into a backend, an import's weights written as a checkpoint. Their
 * option parsing shares cli_util.h. */
#ifndef SNC_CLI_ONNX_H
#define SNC_CLI_ONNX_H
#include "snc/backend.h"
#include "snc/onnx.h"

int snc_cli_import(int argc, char **argv); /* snc import MODEL.onnx -o MODEL.yaml [--weights CKPT] */
int snc_cli_export(int argc, char **argv); /* snc export MODEL [--checkpoint CKPT] -o MODEL.onnx */
int snc_cli_infer(int argc, char **argv);  /* snrun infer MODEL --checkpoint CKPT --input N=F.npy --output DIR */

/* The weights of g (the forward graph's PARAM nodes: parameters and batch norm statistics) into be:
 * from the checkpoint ckpt when given, else from the initializers of m when the model was a .onnx
 * file (m->yaml set; names and shapes checked). 0 when loaded; 1 when there is neither (be untouched);
 * -1 with err on an error. Optimizer state, if any, is zeroed by the caller. */
int snc_cli_load_weights(const char *ckpt, const snc_graph *g, snc_backend *be, const snc_onnx_model *m, snc_error *err);
/* Writes the import's weights as an snrun checkpoint of g (metadata: model, seed 0, epoch 0). */
int snc_cli_onnx_checkpoint(const char *path, const snc_graph *g, const snc_onnx_model *m, snc_error *err);

#endif
