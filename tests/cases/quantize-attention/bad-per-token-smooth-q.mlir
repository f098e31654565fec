// RUN: lowbit opt %s --pass-pipeline='quantize-attention{qk=i4 q-block=1 smooth-q=true}'
