"""LinearARD pipeline: RoPE scaling, restoration and recovery measurement."""
