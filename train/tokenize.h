/*
 * tokenize: `regmix-train tokenize`, the byte-level tokenizer for text with none.
 *
 * Each input file is one document; its bytes are its tokens (vocab 256). Whole documents go to
 * the training or the validation shard by a hash of their content, so the split does not depend
 * on file order. Output: DIR/NAME_train.bin and DIR/NAME_val.bin in llm.c's shard format.
 */
#ifndef REGMIX_TRAIN_TOKENIZE_H
#define REGMIX_TRAIN_TOKENIZE_H

/* Runs the subcommand on argv (argv[0] is "tokenize"); returns the process exit status. */
int tokenize_main(int argc, char **argv);

#endif
