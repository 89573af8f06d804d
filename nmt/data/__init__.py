"""The data stages, in the order the data flows: text files (`textio`) -> parallel corpus and
cleaning (`corpus`) -> vocabularies (`vocab`) -> ids (`encode`) -> the Arrow dataset on disk
(`store`), run together by `prepare`; then, for training, batches (`batching`, with
`subword_sampling`) and padded tensors (`collate`)."""
