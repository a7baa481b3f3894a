//! Execution intents, TP/SL planning, modes and venues (SIM, DRY_RUN, Bybit). The core emits
//! intents as data; venues live at the edge.
