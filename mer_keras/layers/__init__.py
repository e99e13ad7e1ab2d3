"""Custom Keras layers of mer_keras, one per module, each registered for ``.keras`` saving.

Importing this package registers every layer under the ``mer_keras`` package name, so that
``keras.saving.load_model`` can rebuild a saved model.
"""

from mer_keras.layers.channel_select import ChannelSelect
from mer_keras.layers.expression_attention import ExpressionAttention
from mer_keras.layers.micro_attention import MicroAttention
from mer_keras.layers.recurrent_conv import RecurrentConv2D

__all__ = ["ChannelSelect", "ExpressionAttention", "MicroAttention", "RecurrentConv2D"]
