/* The ONNX and .npy verbs of the command-line tools (tools/cli/onnx_cli.c, tools/cli/infer_cli.c):
 * `snc import`, `snc export`, `snrun infer`, and the step they share, putting an import's weights
 * into a backend or a checkpoint. */
#ifndef SNC_CLI_ONNX_H
#define SNC_CLI_ONNX_H
#include "snc/backend.h"
#include "snc/onnx.h"

int snc_cli_import(int argc, char **argv); /* snc import MODEL.onnx -o MODEL.yaml [--weights CKPT] */
int snc_cli_export(int argc, char **argv); /* snc export MODEL [--checkpoint CKPT] -o MODEL.onnx */
int snc_cli_infer(int argc, char **argv);  /* snrun infer MODEL --checkpoint CKPT --input N=F.npy --output DIR */

/* Copies the import's weights into every PARAM node of g (the forward graph: parameters and batch
 * norm statistics), checking names and shapes; optimizer state, if any, is zeroed by the caller. */
int snc_cli_onnx_weights(const snc_graph *g, snc_backend *be, const snc_onnx_model *m, snc_error *err);
/* Writes the import's weights as an snrun checkpoint of g (metadata: model, seed 0, epoch 0). */
int snc_cli_onnx_checkpoint(const char *path, const snc_graph *g, const snc_onnx_model *m, snc_error *err);

#endif
