"""A lab that trains every family of generative model on 2D densities and measures what each learns."""
