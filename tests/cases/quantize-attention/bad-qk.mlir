// RUN: lowbit opt %s --pass-pipeline='quantize-attention{qk=i3}'
