"""Looking at results: sacreBLEU scoring (`scoring`), figures (`plots`), and what vanishing
gradients look like on real sentences (`gradients`)."""
