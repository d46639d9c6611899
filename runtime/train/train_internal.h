/* Private to runtime/train/: what the training loop (train.c), checkpoint evaluation (train_ckpt.c)
 * and the batch and evaluation code (train_eval.c) share. The loop calls down into train_eval.c and
 * train_ckpt.c; neither calls the loop. */
#ifndef SNC_TRAIN_INTERNAL_H
#define SNC_TRAIN_INTERNAL_H
#include "snc/train.h"

/* Training-time augmentation of image inputs (float32, per-sample [C,H,W]): each image of each
 * sample moved by its own draw of this epoch (snc_augment_image), uncovered pixels set to `fill`. */
typedef struct snc_train_augment {
  int shift;
  uint64_t key;
  int64_t epoch;
  float fill;
} snc_train_augment;

/* Copies samples idx[0..nb) (or first..first+nb when idx is NULL) of every stream into the INPUT
 * buffers, augmenting images when aug is not NULL. Bindings were checked by snc_train_data_check. */
void snc_train_load_batch(const snc_graph *g, snc_backend *be, const snc_split *s, const uint32_t *idx, int64_t first,
                          int64_t nb, const snc_train_augment *aug);
/* snc_evaluate; with dist (collective, under data-parallel training) each rank evaluates its
 * contiguous share of s and every rank receives the sums for the whole split. */
void snc_train_evaluate(const snc_graph *g, snc_backend *be, const snc_split *s, uint64_t seed, snc_eval_result *r,
                        int dist);
/* The forward state of (g, be) into an evaluation build (eg, ebe; snc_eval_build_new): every PARAM of
 * eg (trainable or running statistics) from g's PARAM of the same name. Returns 0, or -1 with err
 * when one has no counterpart of its size. */
int snc_train_eval_sync(const snc_graph *g, snc_backend *be, const snc_graph *eg, snc_backend *ebe, snc_error *err);

#endif
