from supcon_tf import losses
