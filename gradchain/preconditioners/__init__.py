"""Preconditioners composed from moments: Adagrad, RMSProp, Adam, AMSGrad, Adadelta."""
