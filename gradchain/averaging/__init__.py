"""Weight averaging: the params to evaluate are an average of the params the optimizer visits.

``ema_params`` keeps an exponential moving average (Polyak-style, PyTorch's ``AveragedModel``
with ``get_ema_multi_avg_fn``), ``swa`` a uniform running average from a starting update on
(stochastic weight averaging, PyTorch's ``AveragedModel`` default rule), and ``swalr`` is the
schedule that anneals to SWA's learning rate (``SWALR``). Each averaging wrapper leaves the
training trajectory exactly as its inner optimizer makes it and keeps the average in its state;
``ema_eval_params`` and ``swa_eval_params`` return the params to evaluate, as Optax's
``schedule_free_eval_params`` does.
"""
