"""The lecture's formulas beside each family: (text, LaTeX) pairs, shown by the pages (pure data)."""

from __future__ import annotations

NOTES: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "gmm": (
        "Gaussian mixture, fitted by EM",
        [
            (
                "A weighted sum of K Gaussians: a latent variable model whose z (which component) is discrete, "
                "so the marginal over z is a sum of K terms and EM maximises the likelihood exactly:",
                r"p(x) = \sum_{k=1}^{K} p(z = k)\, p(x \mid z = k) = \sum_{k=1}^{K} \pi_k\, \mathcal{N}(x;\, \mu_k, \Sigma_k)",
            ),
            (
                "E step: how much each component explains each point,",
                r"\gamma_{ik} = \frac{\pi_k \mathcal{N}(x_i; \mu_k, \Sigma_k)}{\sum_j \pi_j \mathcal{N}(x_i; \mu_j, \Sigma_j)}",
            ),
            (
                "M step: refit each component to its share,",
                r"\pi_k = \tfrac{1}{n}\sum_i \gamma_{ik},\quad \mu_k = \frac{\sum_i \gamma_{ik} x_i}{\sum_i \gamma_{ik}},\quad \Sigma_k = \frac{\sum_i \gamma_{ik}(x_i-\mu_k)(x_i-\mu_k)^\top}{\sum_i \gamma_{ik}}",
            ),
            (
                "K is chosen by the Bayesian information criterion (p parameters, n points):",
                r"\mathrm{BIC} = -2 \log L + p \log n",
            ),
        ],
    ),
    "kde": (
        "Kernel density estimate",
        [
            (
                "One Gaussian bump on every training point, bandwidth h chosen by cross-validated likelihood:",
                r"\hat p(x) = \frac{1}{n}\sum_{i=1}^{n} \mathcal{N}(x;\, x_i, h^2 I)",
            ),
        ],
    ),
    "ae": (
        "Autoencoder",
        [
            (
                "A deterministic code and its decoding, trained to reconstruct:",
                r"z = f_\phi(x),\quad \hat x = g_\theta(z),\quad \mathcal{L} = \lVert x - \hat x \rVert^2",
            ),
            (
                "Not a generative model: nothing says which z are valid, so decoding a Gaussian fitted to the codes lands off the data.",
                "",
            ),
        ],
    ),
    "vae": (
        "Variational autoencoder",
        [
            (
                "A latent variable model: the density of x is the marginal of the decoder P(x|z) over the prior "
                "P(z). With a continuous z and a neural decoder this integral (over all of z-space, for every x) "
                "has no closed form, and neither has the posterior P(z|x) whose normaliser it is: both are "
                "intractable, which is why the VAE trains a bound with an encoder Q(z|x) in the posterior's place.",
                r"P(x) = \int P(x \mid z)\, P(z)\, dz, \qquad P(z \mid x) = \frac{P(x \mid z)\, P(z)}{P(x)}",
            ),
            (
                "The evidence lower bound (ELBO), maximised over encoder Q and decoder P:",
                r"\log P(x) \ge \mathbb{E}_{Q(z|x)}[\log P(x|z)] - \mathrm{KL}\big(Q(z|x)\,\|\,P(z)\big)",
            ),
            (
                "The gap between log P(x) and the ELBO is the KL from the encoder to the true posterior (the "
                "Lecture page's VAE step draws it over training: the importance-weighted log P(x) minus the ELBO):",
                r"\log P(x) - \mathrm{ELBO}(x) = \mathrm{KL}\big(Q(z|x)\,\|\,P(z|x)\big) \ge 0",
            ),
            (
                "The reparameterization trick makes the sample differentiable:",
                r"z = \mu_\phi(x) + \sigma_\phi(x) \odot \varepsilon,\quad \varepsilon \sim \mathcal{N}(0, I)",
            ),
            (
                "The density shown is the importance-weighted bound (tight as K grows):",
                r"\log P(x) \ge \mathbb{E}\Big[\log \frac{1}{K}\sum_{k=1}^{K} \frac{P(x|z_k)P(z_k)}{Q(z_k|x)}\Big]",
            ),
            (
                "With P(z) = N(0, I), prior draws that fall in the holes of the aggregate posterior decode off the data (blurry samples). "
                "The default prior is the VampPrior, a mixture of the encoder's posteriors at K learned pseudo-inputs, which has no holes:",
                r"P(z) = \frac{1}{K}\sum_{k=1}^{K} Q(z \mid u_k)",
            ),
        ],
    ),
    "gan": (
        "Generative adversarial network",
        [
            (
                "The minimax game:",
                r"\min_G \max_D V(D,G) = \mathbb{E}_{x\sim p_{data}}[\log D(x)] + \mathbb{E}_{z}[\log(1 - D(G(z)))]",
            ),
            ("For a fixed G the best discriminator is", r"D^*(x) = \frac{p_{data}(x)}{p_{data}(x) + p_g(x)}"),
            ("and at the global optimum p_g = p_data, D* = 1/2 and", r"V(D^*, G^*) = -\log 4"),
            (
                "Non-saturating generator loss (strong gradients when D wins); WGAN's critic estimates the Earth Mover's distance:",
                r"\mathcal{L}_G = -\mathbb{E}_z[\log D(G(z))],\qquad W(p, q) = \sup_{\lVert f \rVert_L \le 1} \mathbb{E}_p[f] - \mathbb{E}_q[f]",
            ),
        ],
    ),
    "flow": (
        "Normalizing flow",
        [
            (
                "An invertible map f from a Gaussian z to x; the change of variables gives the exact likelihood:",
                r"\log p(x) = \log p_z\big(f^{-1}(x)\big) + \log \left| \det \frac{\partial f^{-1}}{\partial x} \right|",
            ),
            (
                "Coupling layers keep the Jacobian triangular, so its determinant is cheap:",
                r"y_1 = x_1,\quad y_2 = x_2 \odot e^{s(x_1)} + t(x_1),\quad \log|\det J| = \textstyle\sum s(x_1)",
            ),
        ],
    ),
    "ar": (
        "Autoregressive model",
        [
            (
                "The chain rule, one coordinate at a time, exact for any dimension d and any order:",
                r"p(x) = \prod_{i=1}^{d} p(x_i \mid x_1, \dots, x_{i-1}) = \prod_{i=1}^{d} p(x_i \mid x_{<i}),"
                r"\qquad d = 2:\ p(x) = p(x_1)\, p(x_2 \mid x_1)",
            ),
            (
                "PixelRNN computes each conditional with a recurrent network: sequential in training and in "
                "sampling. PixelCNN (and MADE, used here) masks the network so one pass gives every conditional: "
                "training is parallel. Sampling stays sequential in both: d passes, one coordinate at a time "
                "(at d = 2 only two, so it is cheap here).",
                "",
            ),
            ("Exact likelihood, stable training by maximum likelihood.", ""),
        ],
    ),
    "ddpm": (
        "Denoising diffusion (DDPM)",
        [
            (
                "The forward process has a closed form at any step t:",
                r"q(x_t \mid x_0) = \mathcal{N}\big(\sqrt{\bar\alpha_t}\, x_0,\ (1-\bar\alpha_t) I\big),\quad \bar\alpha_t = \textstyle\prod_{s\le t}(1-\beta_s)",
            ),
            (
                "A network learns the noise:",
                r"\mathcal{L} = \mathbb{E}_{t, x_0, \varepsilon}\, \lVert \varepsilon - \varepsilon_\theta(\sqrt{\bar\alpha_t} x_0 + \sqrt{1-\bar\alpha_t}\,\varepsilon,\ t) \rVert^2",
            ),
            (
                "Sampling walks back from noise, one step at a time (slow: T network calls):",
                r"x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\varepsilon_\theta(x_t, t)\Big) + \sigma_t z",
            ),
        ],
    ),
    "score": (
        "Score-based model with Langevin dynamics",
        [
            (
                "A network estimates the score of the data blurred at noise level sigma, by denoising score matching:",
                r"s_\theta(x, \sigma) \approx \nabla_x \log p_\sigma(x),\quad \mathcal{L} = \mathbb{E}\,\Big\lVert s_\theta(x + \sigma\varepsilon, \sigma) + \frac{\varepsilon}{\sigma} \Big\rVert^2",
            ),
            (
                "Langevin dynamics follows the score uphill with noise; annealing runs it from large sigma to small:",
                r"x \leftarrow x + \frac{\alpha}{2}\, s_\theta(x, \sigma) + \sqrt{\alpha}\, z,\quad z \sim \mathcal{N}(0, I)",
            ),
        ],
    ),
    "inverse": (
        "Forward and inverse problems",
        [
            (
                "Forward problem: from x compute the measurement y (one answer, usually easy). Inverse problem: "
                "from y recover x; many x explain the same y (ill-posed), and a generative model's prior p(x) "
                "chooses among them by Bayes' rule:",
                r"y = A(x) + \varepsilon \quad\longrightarrow\quad p(x \mid y) \propto p(y \mid x)\, p(x)",
            ),
        ],
    ),
    "challenges": (
        "The three challenges of generative modelling",
        [
            (
                "Representation: which family of densities p_θ (a mixture, a flow, a latent variable model, an "
                "autoregressive product) can hold the data. Learning: fitting θ, by maximum likelihood where the "
                "likelihood can be computed, otherwise by a bound (VAE) or a game (GAN). Inference: answering "
                "questions with the model: how likely an x is, which z made x, the missing part of x, the x "
                "behind a measurement y.",
                r"\theta^* = \arg\max_\theta \frac{1}{n} \sum_{i=1}^{n} \log p_\theta(x_i)",
            ),
        ],
    ),
    "fm": (
        "Flow matching and rectified flow",
        [
            (
                "A straight path from noise to data, and its velocity:",
                r"x_t = (1-t)\,x_0 + t\,x_1,\quad x_0 \sim \mathcal{N}(0, I),\ x_1 \sim p_{data},\quad u_t = x_1 - x_0",
            ),
            (
                "A network regresses the velocity (conditional flow matching); OT-CFM pairs x0 and x1 by optimal transport in each batch:",
                r"\mathcal{L} = \mathbb{E}_{t, (x_0, x_1)}\, \lVert v_\theta(x_t, t) - (x_1 - x_0) \rVert^2",
            ),
            (
                "Its minimiser is the marginal velocity E[x1 - x0 | x_t]. With independent pairs the lab regresses the "
                "stable target field (Xu et al. 2023): that mean over the row's own x1 and a batch of reference points "
                "y_j, weighted by how likely each makes x_t; same minimiser, far less noise:",
                r"\hat u(x_t) = \frac{\sum_j \mathcal{N}(x_t; t y_j, (1-t)^2 I)\,(y_j - x_t)/(1-t)}"
                r"{\sum_j \mathcal{N}(x_t; t y_j, (1-t)^2 I)},\qquad y_j \in \{x_1\} \cup \text{ref}",
            ),
            (
                "Sampling solves the ODE from t = 0 to 1 (Euler, midpoint, RK4); the exact density follows the divergence along it:",
                r"\frac{dx}{dt} = v_\theta(x, t),\qquad \log p_1(x_1) = \log \mathcal{N}(x_0; 0, I) - \int_0^1 \nabla \cdot v_\theta(x_t, t)\, dt",
            ),
            ("Reflow retrains on the model's own pairs (x0, ODE(x0)): straighter paths, fewer steps.", ""),
        ],
    ),
}
