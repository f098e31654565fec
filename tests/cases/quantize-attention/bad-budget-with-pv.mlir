// RUN: lowbit opt %s --pass-pipeline='quantize-attention{budget=0.999 pv=f8}'
