"""The families of networks toysuper trains, each registered with the engine (toysuper/family.py).

toys.py  toy models of superposition (Elhage et al. 2022): the default family
saes.py  sparse autoencoders on a source's activations (an experiment with an [sae] section)
"""
